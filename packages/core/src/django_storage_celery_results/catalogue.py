"""The catalogue of system check ids: one per package, each id with one level and one meaning.

Every check message of core and of the providers is made from an entry of
its package's catalogue (``CHECKS.message("E010", ...)``), so an id cannot be
used for another meaning or at another level. The object-store ids that the
connectivity probe emits for every provider are defined once here
(``OBJECT_STORE_CHECKS``) and keep their meaning in every provider; a
provider's own ids use numbers no other provider gives another meaning.

Public shape, for documentation tables: each package exports ``CHECKS``, an
iterable of entries with ``.id`` (``"E010"``), ``.level`` (``"error"``,
``"warning"`` or ``"info"``) and ``.meaning``; ``CHECKS.package`` is the id
prefix (``django_storage_celery_results_s3``), ``CHECKS.full_id(entry)`` the
id Django shows.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from django.core import checks

LEVELS = {"E": ("error", checks.ERROR), "W": ("warning", checks.WARNING), "I": ("info", checks.INFO)}


@dataclass(frozen=True)
class CheckId:
    """One check id of a package: its level follows from the letter (E, W, I)."""

    id: str
    meaning: str

    def __post_init__(self) -> None:
        if len(self.id) != 4 or self.id[0] not in LEVELS or not self.id[1:].isdigit():
            raise ValueError(f"a check id is a letter E, W or I and three digits, not {self.id!r}")

    @property
    def level(self) -> str:
        return LEVELS[self.id[0]][0]


class Catalogue:
    """The check ids of one package, and the only way to make its check messages."""

    def __init__(self, package: str, *entries: CheckId) -> None:
        self.package = package
        self.entries: dict[str, CheckId] = {}
        for entry in entries:
            if entry.id in self.entries:
                raise ValueError(f"{package}.{entry.id} is defined twice")
            self.entries[entry.id] = entry

    def __iter__(self) -> Iterator[CheckId]:
        return iter(self.entries.values())

    def __contains__(self, check_id: object) -> bool:
        return check_id in self.entries

    def full_id(self, entry: CheckId) -> str:
        return f"{self.package}.{entry.id}"

    def message(self, check_id: str, text: str, hint: str | None = None) -> checks.CheckMessage:
        """A check message of a catalogued id; an id not in the catalogue is a bug (KeyError)."""
        entry = self.entries[check_id]
        return checks.CheckMessage(LEVELS[check_id[0]][1], text, hint=hint, id=self.full_id(entry))


class Shared:
    """Ids whose meaning is defined once and reused by several packages."""

    def __init__(self, *entries: CheckId) -> None:
        self.entries = {entry.id: entry for entry in entries}

    def __iter__(self) -> Iterator[CheckId]:
        return iter(self.entries.values())

    def pick(self, *check_ids: str) -> tuple[CheckId, ...]:
        return tuple(self.entries[check_id] for check_id in check_ids)


#: What the object-store providers report alike (``probe.py`` emits most of them).
OBJECT_STORE_CHECKS = Shared(
    CheckId("E001", "results would be written with a public ACL (from the configuration alone)"),
    CheckId("E010", "the bucket (container) does not exist"),
    CheckId("E011", "no usable credentials, or the store rejected them"),
    CheckId("E012", "the store's endpoint cannot be reached"),
    CheckId(
        "E013", "the probe object could not be written, read back or deleted (the hint names the permission)"
    ),
    CheckId("E014", "the store ignores the create-only or version-matched write conditions"),
    CheckId("E015", "results would be publicly readable (an ACL on the probe, a public bucket or container)"),
    CheckId("W010", "the credentials may not list the results prefix"),
    CheckId("W011", "no lifecycle rule expires the results, and result_expires is set"),
    CheckId("W012", "a lifecycle rule expires results after another number of days than result_expires"),
    CheckId(
        "I010",
        "settings of the bucket (container) could not be read, so what depends on them was not checked",
    ),
)
