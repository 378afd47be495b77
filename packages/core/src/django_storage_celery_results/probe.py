"""The connectivity probe that object-store providers share (``manage.py check --deploy``).

A provider subclasses ``Probe`` with its error vocabulary: which exceptions a
step catches, how to name one in a message (never with credentials) and
which causes it recognises. The steps every store has in common live here:
a put/get/delete round trip under the results prefix that also proves the
conditional writes, and the verdict on a lifecycle rule. Check ids are
``<provider package>.E0nn`` / ``W0nn`` / ``I0nn`` with the numbers below.
"""

from __future__ import annotations

import datetime
import math
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from django.core import checks

from .adapters import CREATE, StorageAdapter, Update
from .exceptions import ImproperlyConfigured, VersionMismatch

PROBE_PREFIX = "celery-check-"

#: Check numbers, the same for every provider.
NO_BUCKET, BAD_CREDENTIALS, UNREACHABLE, STEP_FAILED, NO_CONDITIONS, PUBLIC = 10, 11, 12, 13, 14, 15
NO_LIST_PERMISSION, NO_LIFECYCLE_RULE, OTHER_LIFECYCLE_DAYS = 10, 11, 12
LIFECYCLE_UNREADABLE = 10
DAY = 86400


def expiry_days(expires: float | datetime.timedelta) -> int:
    """Lifecycle rules count whole days: round up, so no result expires early."""
    seconds = expires.total_seconds() if isinstance(expires, datetime.timedelta) else float(expires)
    return max(1, math.ceil(seconds / DAY))


def require_results_prefix(prefix: str, store: str, everything: str = "every object of the bucket") -> None:
    """Refuse a lifecycle rule for results kept at the bucket root: it would expire everything."""
    if not prefix:
        raise ImproperlyConfigured(
            f"A {store} lifecycle rule for results needs a results location: with none it would "
            f"expire {everything}. Set CELERY_RESULT_STORAGE_CONFIG['location']."
        )


def public_acl_errors(
    adapter: StorageAdapter,
    package: str,
    preset: str,
    public: frozenset[str],
    parameter: str,
    parameters_setting: str,
) -> list[checks.CheckMessage]:
    """Check E001, from the configuration alone: results would be written with a public ACL.

    The ACL is the storage's object parameter of that name, else its default_acl
    (S3Storage and GoogleCloudStorage alike); parameters_setting names the
    Django setting of the object parameters.
    """
    storage: Any = adapter.storage
    acl = storage.get_object_parameters("").get(parameter) or storage.default_acl
    if acl not in public:
        return []
    return [
        checks.Error(
            f"Celery results in {adapter.describe()} are written with the ACL {acl!r}: "
            "anyone could read task results.",
            hint=f"Remove {parameter} from {parameters_setting} / default_acl for results: set "
            f"CELERY_RESULT_STORAGE_CONFIG['default_acl'] = None, or use the {preset!r} preset.",
            id=f"{package}.E001",
        )
    ]


@dataclass(frozen=True)
class Finding:
    """A recognised cause of a failed step: what happened, the fix, the check number."""

    what: str
    hint: str
    number: int


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


class Probe:
    """Runs the steps of a connectivity check and turns failures into check messages."""

    #: The provider's import name: the check id prefix.
    package: ClassVar[str]
    #: What a failing step may raise (anything else is a bug and propagates).
    errors: ClassVar[tuple[type[BaseException], ...]] = ()

    def __init__(self, adapter: StorageAdapter) -> None:
        self.adapter = adapter
        self.messages: list[checks.CheckMessage] = []

    def code(self, exc: BaseException) -> str:
        """A short name of the error for messages (an error code, never a secret)."""
        return type(exc).__name__

    def diagnose(self, doing: str, exc: BaseException) -> Finding | None:
        """A recognised cause (missing bucket, credentials, network), or None."""
        return None

    def step(self, doing: str, call: Callable[[], Any], hint: str) -> tuple[bool, Any]:
        try:
            return True, call()
        except self.errors as exc:
            self.report(doing, exc, hint)
            return False, None

    def report(self, doing: str, exc: BaseException, hint: str) -> None:
        finding = self.diagnose(doing, exc) or Finding(f"{doing} failed: {self.code(exc)}", hint, STEP_FAILED)
        self.fail(finding.what, finding.hint, finding.number)

    def _message(
        self, level: Callable[..., checks.CheckMessage], letter: str, what: str, hint: str, number: int
    ) -> None:
        self.messages.append(
            level(
                f"Celery results in {self.adapter.describe()}: {what}.",
                hint=hint,
                id=f"{self.package}.{letter}{number:03d}",
            )
        )

    def fail(self, what: str, hint: str, number: int) -> None:
        self._message(checks.Error, "E", what, hint, number)

    def warn(self, what: str, hint: str, number: int) -> None:
        self._message(checks.Warning, "W", what, hint, number)

    def info(self, what: str, hint: str, number: int) -> None:
        self._message(checks.Info, "I", what, hint, number)

    def round_trip(self, words: RoundTrip, inspect: Callable[[str], None] = lambda name: None) -> bool:
        """Write, read back and delete a probe object; False when it could not be written.

        Between reading and deleting, proves that the store refuses a second
        create-only write and a write matched against a stale version, then
        lets the provider inspect the object (its ACL, for instance).
        """
        adapter = self.adapter
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
                self.fail(
                    "a probe object read back different",
                    "Check the endpoint and any proxy in between.",
                    STEP_FAILED,
                )
            self._check_conditions(name, words)
            inspect(name)
        finally:
            self.step("deleting the probe object", lambda: adapter.delete(name), words.delete_hint)
        return True

    def _check_conditions(self, name: str, words: RoundTrip) -> None:
        attempts = ((CREATE, words.create_condition), (Update(words.stale_version), words.update_condition))
        for mode, condition in attempts:
            try:
                self.adapter.put(name, b"{}", mode)
            except VersionMismatch:
                continue
            except self.errors:
                pass  # reported as an error below, like an ignored condition
            self.fail(
                f"the store ignores {condition}, so a late duplicate could overwrite a SUCCESS result",
                words.conditions_hint,
                NO_CONDITIONS,
            )
            return

    def lifecycle(
        self,
        read_rule: Callable[[], tuple[str, int] | None],
        expires_seconds: float,
        unreadable_hint: str,
    ) -> None:
        """Report on the rule that expires results: read_rule gives its label and days, or None."""
        days = expiry_days(expires_seconds)
        try:
            rule = read_rule()
        except self.errors as exc:
            self.info(
                f"the lifecycle configuration could not be read ({self.code(exc)})",
                unreadable_hint,
                LIFECYCLE_UNREADABLE,
            )
            return
        helper = f"{self.package}.ensure_lifecycle_rule"
        if rule is None:
            self.warn(
                f"no lifecycle rule expires the results prefix, so expired results stay until cleanup() "
                f"deletes them (result_expires is {expires_seconds:g} s)",
                "Run celery beat (it schedules celery.backend_cleanup daily), or create the rule once "
                f"with {helper}.",
                NO_LIFECYCLE_RULE,
            )
        elif rule[1] != days:
            self.warn(
                f"the lifecycle rule {rule[0]} expires results after {rule[1]} days, "
                f"result_expires asks for {days}",
                f"Update it with {helper}.",
                OTHER_LIFECYCLE_DAYS,
            )
