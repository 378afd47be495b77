"""The connectivity probe of every object store (``manage.py check --deploy``), as one template.

``Probe.run`` makes the same steps on every store: a first cheap request
(the preflight: bucket, credentials, network), a put/get/delete round trip
under the results prefix that also proves the conditional writes, then the
store's bucket-wide findings and the verdict on a lifecycle rule. A
provider subclasses it with small hooks: its first request, what to look at
on the probe object and on the bucket, how to read its lifecycle rule, and
its words for hints. Failures are sorted by the provider's ``errors`` module
(the same one its adapter uses) into the ids of ``OBJECT_STORE_CHECKS``.
"""

from __future__ import annotations

import datetime
import math
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from django.core import checks

from .adapters import CREATE, ObjectStoreAdapter, Update
from .catalogue import Catalogue
from .errors import Kind
from .exceptions import ImproperlyConfigured, ResultStoreMisconfigured, StoreRequestFailed, VersionMismatch

if TYPE_CHECKING:
    from .config import StorageConfig
    from .providers import Setting

PROBE_PREFIX = "celery-check-"
DAY = 86400


def expiry_days(expires: float | datetime.timedelta | None) -> int:
    """Lifecycle rules count whole days: round up, so no result expires early.

    A lifecycle rule needs results that expire: None, zero or a negative
    result_expires is refused with a message naming the setting.
    """
    seconds = expires.total_seconds() if isinstance(expires, datetime.timedelta) else expires
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not seconds > 0:
        raise ImproperlyConfigured(
            f"A lifecycle rule needs result_expires (CELERY_RESULT_EXPIRES) as a positive number of "
            f"seconds or a timedelta, not {expires!r}: results that never expire need no rule."
        )
    return max(1, math.ceil(seconds / DAY))


def days(count: int) -> str:
    return f"{count} day" if count == 1 else f"{count} days"


def require_results_prefix(prefix: str, store: str, everything: str = "every object of the bucket") -> None:
    """Refuse a lifecycle rule for results kept at the bucket root: it would expire everything."""
    if not prefix:
        raise ImproperlyConfigured(
            f"A {store} lifecycle rule for results needs a results location: with none it would "
            f"expire {everything}. Set CELERY_RESULT_STORAGE_CONFIG['location']."
        )


def merge_rule(
    rules: Sequence[dict[str, Any]],
    wanted: dict[str, Any],
    is_ours: Callable[[dict[str, Any]], bool],
    same: Callable[[dict[str, Any], dict[str, Any]], bool] = lambda current, wanted: current == wanted,
) -> tuple[str, list[dict[str, Any]]]:
    """A store's lifecycle rules with ours created or updated, the others kept as they are:
    ("created" | "updated" | "unchanged", the rules to write back)."""
    ours = [rule for rule in rules if is_ours(rule)]
    if len(ours) == 1 and same(ours[0], wanted):
        return "unchanged", list(rules)
    return ("updated" if ours else "created"), [*(rule for rule in rules if not is_ours(rule)), wanted]


@dataclass(frozen=True)
class PublicAcl:
    """Check E001, from the configuration alone: results would be written with a public ACL.

    S3Storage and GoogleCloudStorage alike take a result's ACL from the object
    parameter of that name, else their default_acl. The hint names where the
    value came from: the config key when CELERY_RESULT_STORAGE_CONFIG (or the
    STORAGES alias) set it, else the Django setting; and the preset only to
    a user not on it. Called as the provider's settings check.
    """

    catalogue: Catalogue
    settings_map: Sequence[Setting]
    preset: str
    #: ACL names that let people outside the account read an object.
    public: frozenset[str]
    #: The ACL's key among the object parameters ("ACL", "acl").
    parameter: str

    def __call__(self, adapter: Any, config: StorageConfig | None = None) -> list[checks.CheckMessage]:
        storage = adapter.storage
        from_parameters = storage.get_object_parameters("").get(self.parameter)
        acl = from_parameters or storage.default_acl
        if acl not in self.public:
            return []
        argument = "object_parameters" if from_parameters else "default_acl"
        in_config = config is not None and argument in config.options
        setting = next(row.names[0] for row in self.settings_map if row.argument == argument)
        where = f"CELERY_RESULT_STORAGE_CONFIG[{argument!r}]" if in_config else setting
        if from_parameters:
            hint = f"Remove {self.parameter!r} from {where}."
        elif in_config:
            hint = f"Set {where} = None (no ACL is sent: the bucket decides)."
        else:
            hint = (
                f"Set CELERY_RESULT_STORAGE_CONFIG['default_acl'] = None for results (it wins over {where})"
            )
            on_preset = config is not None and config.source.endswith(f"= {self.preset!r} (preset)")
            hint += "." if on_preset else f", or use the {self.preset!r} preset, which sends none."
        text = (
            f"Celery results in {adapter.describe()} are written with the ACL {acl!r} "
            f"(from {where}): anyone could read task results."
        )
        return [self.catalogue.message("E001", text, hint)]


@dataclass(frozen=True)
class Finding:
    """A recognised cause of a failed step: the check id, what happened, the fix."""

    check_id: str
    what: str
    hint: str


@dataclass(frozen=True)
class RoundTrip:
    """The store's words for the round trip's messages."""

    write_hint: str
    read_hint: str
    delete_hint: str
    #: How the store spells a create-only and a version-matched write.
    create_condition: str
    update_condition: str
    #: A version no object has, for the version-matched write that must fail.
    stale_version: str
    conditions_hint: str
    #: Where the store appends (chords count with appends): the permission an append needs.
    append_hint: str = ""


class Probe:
    """The connectivity check of one object-store adapter; ``check`` runs it."""

    #: The provider's catalogue: the check id prefix and every id it may use.
    catalogue: ClassVar[Catalogue]
    words: ClassVar[RoundTrip]
    #: Hints for a store that cannot be reached and for rejected credentials.
    network_hint: ClassVar[str]
    credentials_hint: ClassVar[str] = ""
    #: Appended to "Create it, or fix bucket_name (SETTING)": other settings that lead to the bucket.
    bucket_hint_also: ClassVar[str] = ""
    #: What the preflight does, and its hint when it fails.
    preflight_doing: ClassVar[str] = "listing the bucket"
    preflight_hint: ClassVar[str] = ""
    #: The hint of a lifecycle configuration that could not be read.
    lifecycle_unreadable_hint: ClassVar[str] = ""

    def __init__(self, adapter: ObjectStoreAdapter) -> None:
        self.adapter = adapter
        self.errors: tuple[type[BaseException], ...] = (
            *adapter.errors.raised,
            ResultStoreMisconfigured,
            StoreRequestFailed,
        )
        self.messages: list[checks.CheckMessage] = []

    @classmethod
    def check(cls, adapter: Any, expires_seconds: float | None = None) -> list[checks.CheckMessage]:
        """Talk to the store and report what would break or leak; [] when all is well."""
        return cls(adapter).run(expires_seconds)

    def run(self, expires_seconds: float | None) -> list[checks.CheckMessage]:
        if expires_seconds is not None and expires_seconds <= 0:
            expires_seconds = None  # results that never expire need no rule
        if self.preflight() and self.round_trip():
            self.check_appends()
            self.after_round_trip(expires_seconds)
        return self.messages

    # -- hooks -------------------------------------------------------------------

    def first_request(self) -> Any:
        """The cheapest request that proves bucket, credentials and network."""
        raise NotImplementedError

    def without_permission(self) -> None:
        """The preflight was refused for want of a permission; the check goes on."""
        raise NotImplementedError

    def inspect(self, name: str) -> None:
        """Look at the probe object while it exists (its ACL, for instance)."""

    def read_rule(self) -> tuple[str, int] | None:
        """The label and days of the rule that expires results, or None."""
        return None

    def after_round_trip(self, expires_seconds: float | None) -> None:
        """Bucket-wide findings; by default the lifecycle verdict."""
        if expires_seconds:
            self.lifecycle(self.read_rule, expires_seconds)

    # -- the steps ---------------------------------------------------------------

    def code(self, exc: BaseException) -> str:
        if isinstance(exc, ResultStoreMisconfigured) and exc.cause is not None:
            exc = exc.cause
        return self.adapter.errors.code(exc)

    def kind(self, exc: BaseException, missing_means_bucket: bool = False) -> Kind | None:
        if isinstance(exc, ResultStoreMisconfigured) and exc.cause is not None:
            exc = exc.cause
        return self.adapter.kind(exc, missing_means_bucket)

    def add(self, check_id: str, what: str, hint: str) -> None:
        self.messages.append(
            self.catalogue.message(check_id, f"Celery results in {self.adapter.describe()}: {what}.", hint)
        )

    def diagnose(self, doing: str, exc: BaseException, hint: str, missing_means_bucket: bool) -> Finding:
        adapter, code = self.adapter, self.code(exc)
        kind = self.kind(exc, missing_means_bucket)
        if kind is Kind.MISSING_BUCKET:
            return Finding(
                "E010",
                f"the {adapter.bucket_word} {adapter.bucket_name!r} does not exist",
                f"Create it, or fix {adapter.bucket_argument} ({adapter.bucket_setting})"
                f"{self.bucket_hint_also}.",
            )
        if kind is Kind.CREDENTIALS:
            return Finding(
                "E011",
                f"{adapter.store} rejected the credentials, or found none ({code}), while {doing}",
                self.credentials_hint or f"Check {adapter.credential_settings}.",
            )
        if kind is Kind.UNREACHABLE:
            return Finding("E012", f"cannot reach {adapter.store} while {doing} ({code})", self.network_hint)
        return Finding("E013", f"{doing} failed: {code}", hint)

    def report(self, doing: str, exc: BaseException, hint: str, missing_means_bucket: bool = False) -> None:
        finding = self.diagnose(doing, exc, hint, missing_means_bucket)
        self.add(finding.check_id, finding.what, finding.hint)

    def step(self, doing: str, call: Callable[[], Any], hint: str) -> tuple[bool, Any]:
        try:
            return True, call()
        except self.errors as exc:
            self.report(doing, exc, hint)
            return False, None

    def preflight(self) -> bool:
        """The first request; False when nothing more can be checked."""
        try:
            self.first_request()
        except self.errors as exc:
            if self.kind(exc, missing_means_bucket=True) is not Kind.PERMISSION:
                self.report(self.preflight_doing, exc, self.preflight_hint, missing_means_bucket=True)
                return False
            self.without_permission()
        return True

    def round_trip(self) -> bool:
        """Write, read back and delete a probe object; False when it could not be written.

        Between reading and deleting, proves that the store refuses a second
        create-only write and a write matched against a stale version, then
        lets the provider inspect the object.
        """
        adapter, words = self.adapter, self.words
        name = f"{PROBE_PREFIX}{uuid.uuid4().hex}"
        written, _version = self.step(
            "writing a probe object", lambda: adapter.put(name, b"{}", CREATE), words.write_hint
        )
        if not written:
            return False
        try:
            ok, stored = self.step(
                "reading the probe object back", lambda: adapter.read(name), words.read_hint
            )
            if ok and (stored is None or stored.data != b"{}"):
                self.add(
                    "E013",
                    "a probe object read back different",
                    "Check the endpoint and any proxy in between.",
                )
            self._check_conditions(name)
            self.inspect(name)
        finally:
            self.step("deleting the probe object", lambda: adapter.delete(name), words.delete_hint)
        return True

    def check_appends(self) -> None:
        """Where chords count their header tasks with appends: create a probe
        append object, append to it, and delete it."""
        adapter, words = self.adapter, self.words
        if not adapter.appends:
            return
        name = f"{PROBE_PREFIX}{uuid.uuid4().hex}"
        created, _ = self.step(
            "creating a probe append blob (chords count with appends)",
            lambda: adapter.create_appendable(name),
            words.append_hint or words.write_hint,
        )
        if not created:
            return
        try:
            appended, count = self.step(
                "appending to the probe append blob (chords count with appends)",
                lambda: adapter.append(name, b"probe\n"),
                words.append_hint or words.write_hint,
            )
            if appended and count != 1:
                self.add(
                    "E013",
                    f"an append to a new probe append blob answered {count} appends, not 1, so chords "
                    "cannot count their header tasks",
                    "Check the endpoint and any proxy in between.",
                )
        finally:
            self.step("deleting the probe append blob", lambda: adapter.delete(name), words.delete_hint)

    def _check_conditions(self, name: str) -> None:
        words = self.words
        attempts = ((CREATE, words.create_condition), (Update(words.stale_version), words.update_condition))
        for mode, condition in attempts:
            try:
                self.adapter.put(name, b"{}", mode)
            except VersionMismatch:
                continue
            except self.errors:
                pass  # reported as an error below, like an ignored condition
            self.add(
                "E014",
                f"the store ignores {condition}, so a late duplicate could overwrite a SUCCESS result",
                words.conditions_hint,
            )
            return

    def lifecycle(self, read_rule: Callable[[], tuple[str, int] | None], expires_seconds: float) -> None:
        """Report on the rule that expires results: read_rule gives its label and days, or None."""
        wanted = expiry_days(expires_seconds)
        try:
            rule = read_rule()
        except self.errors as exc:
            self.add(
                "I010",
                f"the lifecycle configuration could not be read ({self.code(exc)})",
                self.lifecycle_unreadable_hint,
            )
            return
        helper = f"{self.catalogue.package}.ensure_lifecycle_rule"
        if rule is None:
            self.add(
                "W011",
                f"no lifecycle rule expires the results prefix, so expired results stay until cleanup() "
                f"deletes them (result_expires is {expires_seconds:g} s)",
                "Run celery beat (it schedules celery.backend_cleanup daily), or create the rule once "
                f"with {helper}.",
            )
        elif rule[1] != wanted:
            self.add(
                "W012",
                f"the lifecycle rule {rule[0]} expires results after {days(rule[1])}, "
                f"result_expires asks for {days(wanted)}",
                f"Update it with {helper}.",
            )
