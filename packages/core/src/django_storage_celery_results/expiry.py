"""What ``cleanup()`` (Celery's ``celery.backend_cleanup`` task) deletes, and its report.

Results older than ``result_expires`` go, chord bookkeeping older than
``result_chord_expires`` where that is set, and debris of interrupted writes,
all from one listing. The age is the listing's modified time; on a storage
that cannot tell modified times (a Storage without ``get_modified_time``) it
is the ``date_done`` stored in each result, which costs one read per result,
and what stores no date (a result not finished yet, an older group) is kept.

Cleanup never raises: a storage error stops it, is logged with its
credentials hidden, and the report says what was done until then.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
from typing import TYPE_CHECKING

from celery.utils.time import maybe_iso8601, maybe_make_aware

from .adapters import in_batches
from .exceptions import InvalidStoredResult
from .redact import Redactor

if TYPE_CHECKING:
    from .backends import StorageBackend

# The summary goes out at INFO: celery beat's backend_cleanup runs in a worker,
# and a worker started with -l info shows INFO from every logger (Celery gives
# the root logger its handler). A process without LOGGING shows only WARNING
# and above (Python's last-resort handler), so a failure is logged at ERROR,
# and callers there read the returned report.
logger = logging.getLogger("django_storage_celery_results.backends")

#: Results read at once to learn their date_done.
READ_BATCH = 100
#: Names handed to one delete_many (an adapter splits them as its store needs).
DELETE_BATCH = 1000
#: Temporary files of interrupted writes older than this are removed.
LEFTOVER_AGE = datetime.timedelta(hours=1)


@dataclasses.dataclass
class CleanupReport:
    """What one cleanup did: objects deleted by kind, and the cost of dating them."""

    #: Expired task results deleted.
    results: int = 0
    #: Expired group results deleted.
    groups: int = 0
    #: Expired chord bookkeeping objects deleted.
    chords: int = 0
    #: Debris of interrupted writes deleted.
    leftovers: int = 0
    #: Stored results read for their date_done (a storage without modified times).
    read: int = 0
    #: Kept because their age is unknown: no modified time and no date_done
    #: stored (a task not finished yet, a group saved by an older version).
    skipped: int = 0
    #: The storage error that stopped cleanup, credentials hidden; None if it finished.
    error: str | None = None

    @property
    def deleted(self) -> int:
        return self.results + self.groups + self.chords + self.leftovers


def cleanup(backend: StorageBackend) -> CleanupReport:
    report = CleanupReport()
    if not backend.expires:
        logger.info("Celery results cleanup: result_expires is not set, nothing expires")
        return report
    try:
        _expire(backend, report)
    except Exception as exc:
        report.error = _redacted(backend, f"{type(exc).__name__}: {exc}")
        logger.error("Celery results cleanup stopped by a storage error: %s", report.error)
    logger.info("Celery results cleanup of %s: %s", _where(backend), _summary(report))
    return report


def _expire(backend: StorageBackend, report: CleanupReport) -> None:
    now = datetime.datetime.now(datetime.timezone.utc)
    cutoff = now - datetime.timedelta(seconds=float(backend.expires))
    chord_expires = backend.prepare_expires(backend.app.conf.get("result_chord_expires"), type=float)
    chord_cutoff = now - datetime.timedelta(seconds=float(chord_expires or backend.expires))

    def expired(name: str, when: datetime.datetime) -> bool:
        return when < (chord_cutoff if name.startswith(backend.chord_keyprefix) else cutoff)

    adapter = backend.adapter
    gone: list[str] = []
    undated: list[str] = []
    for item in adapter.list(backend.layout.owns):
        if item.modified is None:
            undated.append(item.name)
        elif expired(item.name, item.modified):
            gone.append(item.name)
    for batch in in_batches(undated, READ_BATCH):
        for name, payload in zip(batch, _read(backend, batch), strict=True):
            report.read += 1
            done = _date_done(backend, payload)
            if done is None:
                report.skipped += 1
            elif expired(name, done):
                gone.append(name)
    for batch in in_batches(gone, DELETE_BATCH):
        backend.delete_names(batch)
        for name in batch:
            _count(backend, report, name)
    report.leftovers = adapter.remove_leftovers(now - LEFTOVER_AGE)


def _read(backend: StorageBackend, names: list[str]) -> list[bytes | None]:
    """The stored bytes of names, read in parallel where the adapter can; None
    for an object that is not a result (its age is unknown)."""
    try:
        return backend.mget(names)
    except InvalidStoredResult:
        return [_read_one(backend, name) for name in names]


def _read_one(backend: StorageBackend, name: str) -> bytes | None:
    try:
        return backend.get(name)
    except InvalidStoredResult:
        return None


def _date_done(backend: StorageBackend, payload: bytes | None) -> datetime.datetime | None:
    if not payload:
        return None
    try:
        meta = backend.decode(payload)
        done = maybe_iso8601(meta.get("date_done")) if isinstance(meta, dict) else None
    except Exception:  # not a result this backend can read: its age is unknown
        return None
    return maybe_make_aware(done, backend.app.timezone) if done is not None else None


def _count(backend: StorageBackend, report: CleanupReport, name: str) -> None:
    if name.startswith(backend.chord_keyprefix):
        report.chords += 1
    elif name.startswith(backend.group_keyprefix):
        report.groups += 1
    else:
        report.results += 1


def _summary(report: CleanupReport) -> str:
    text = (
        f"deleted {report.results} expired results, {report.groups} groups, "
        f"{report.chords} chord bookkeeping objects and {report.leftovers} leftovers of interrupted writes"
    )
    if report.read:
        text += (
            f"; the storage has no modified times, so {report.read} results were read for "
            f"their date_done (one read per result), {report.skipped} kept with no date_done"
        )
    return text + (" (stopped early)" if report.error else "")


def _where(backend: StorageBackend) -> str:
    try:
        return backend.adapter.describe()
    except Exception:
        return "the result storage"


def _redacted(backend: StorageBackend, text: str) -> str:
    try:
        return backend.adapter.redact(text)
    except Exception:  # no adapter could be built: hide what the options hold
        return Redactor(backend.storage_config.options)(text)
