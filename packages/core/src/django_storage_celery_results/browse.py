"""What the admin pages and the status views show, over an Inventory.

No page holds a listing: a page is one listing request (on an object store)
of at most PER_PAGE names, then their reads in parallel; a page with a filter
lists up to SCAN names instead and shows those that match. Order is the
listing's: object stores list names, and a result's name is its task id, so
results come in task id order, not newest first.
"""

from __future__ import annotations

import datetime
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from celery import states
from celery.result import GroupResult, result_from_tuple

from .backends import StorageBackend
from .checks import project_app
from .exceptions import ImproperlyConfigured
from .inventory import GROUP, TASK, Inventory, Result
from .selection import Selection

#: Results on a page without filters: one listing request and this many reads.
PER_PAGE = 50
#: Listed results a page with a filter looks at (one listing request; S3
#: lists at most 1,000 keys per request): a filter never scans the whole store.
SCAN = 200
#: Ids that are their own storage name (keys.py): the start of one is the start of a name.
PLAIN_ID = re.compile(r"[a-z0-9][a-z0-9._-]*")
#: The date filter: how recently the listing says a result was written.
AGES: dict[str, tuple[str, datetime.timedelta, bool]] = {
    "1h": ("Past hour", datetime.timedelta(hours=1), False),
    "24h": ("Past 24 hours", datetime.timedelta(days=1), False),
    "7d": ("Past 7 days", datetime.timedelta(days=7), False),
    "30d": ("Past 30 days", datetime.timedelta(days=30), False),
    "older-7d": ("Older than 7 days", datetime.timedelta(days=7), True),
    "older-30d": ("Older than 30 days", datetime.timedelta(days=30), True),
}


def storage_backend() -> StorageBackend:
    """The result backend of the project's Celery app, when it is ours."""
    app = project_app()
    if app is None:
        raise ImproperlyConfigured(
            "No Celery app was found: import the project's Celery app in the project package's "
            "__init__.py (Celery's 'First steps with Django')."
        )
    backend = app.backend
    if not isinstance(backend, StorageBackend):
        raise ImproperlyConfigured(
            f"The Celery app {app.main!r} stores results with {type(backend).__name__}, not django-storage."
        )
    return backend


@dataclass(frozen=True)
class Query:
    """What a list page asks for, from its URL."""

    kind: str = TASK
    states: frozenset[str] = frozenset()
    task: str = ""
    age: str = ""
    #: A task id or the start of one.
    id_search: str = ""
    #: Part of a task name (reads every scanned result).
    name_search: str = ""

    def selection(self, now: datetime.datetime) -> Selection:
        older = newer = None
        if self.age in AGES:
            _label, delta, is_older = AGES[self.age]
            older, newer = (now - delta, None) if is_older else (None, now - delta)
        tasks = tuple(t for t in (self.task, f"*{self.name_search}*" if self.name_search else "") if t)
        return Selection(self.kind, self.states, tasks, older, newer)

    @property
    def filtered(self) -> bool:
        return bool(self.states or self.task or self.age or self.name_search)


@dataclass
class Page:
    rows: list[Result]
    #: Where the next page starts (opaque); None on the last page.
    cursor: str | None
    #: Names the listing gave for this page.
    scanned: int
    #: Results read for this page.
    read: int
    #: The one result an id that is not a plain id names, looked up directly.
    exact: bool = False
    names_seen: list[str] = field(default_factory=list)


def list_page(inventory: Inventory, query: Query, cursor: str | None) -> Page:
    """One page: a listing request, the reads it needs, the matches."""
    now = datetime.datetime.now(datetime.timezone.utc)
    selection = query.selection(now)
    if query.id_search and not PLAIN_ID.fullmatch(query.id_search):
        # stored under an encoded name: no prefix of it is a prefix of names; look it up
        entry = inventory.task_entry(query.id_search, group=query.kind == GROUP)
        found = inventory.read_one(entry)
        rows = [found] if found is not None and selection.fits(found) else []
        return Page(rows, None, 0, 1, exact=True, names_seen=_names(rows))
    limit = SCAN if query.filtered else PER_PAGE
    listed = inventory.page(limit, cursor, query.kind, query.id_search)
    candidates = [entry for entry in listed.entries if selection.listed_fits(entry)]
    read = list(inventory.read(candidates))
    rows = [result for result in read if selection.fits(result)]
    return Page(rows, listed.cursor, listed.listed, len(candidates), names_seen=_names(read))


def _names(results: list[Result]) -> list[str]:
    return sorted({r.task_name for r in results if r.task_name})


def group_members(inventory: Inventory, group: Result) -> list[tuple[str, Result | None]]:
    """The members of a saved group and their results, read in parallel
    (None: nothing stored yet, PENDING)."""
    try:
        saved = result_from_tuple((group.meta or {}).get("result"), inventory.backend.app)
        ids = list(_member_ids(saved)) if isinstance(saved, GroupResult) else []
    except (TypeError, ValueError, IndexError, KeyError, AttributeError):
        raise ValueError("it is not a saved group") from None
    found = {r.id: r for r in inventory.read(inventory.task_entry(i) for i in ids)}
    return [(i, found.get(i)) for i in ids]


def member_count(group: Result) -> int | None:
    """How many members a saved group lists, from its stored tuple, without reading them."""
    saved = (group.meta or {}).get("result")
    if isinstance(saved, (list, tuple)) and len(saved) == 2 and isinstance(saved[1], (list, tuple)):
        return len(saved[1])
    return None


def _member_ids(group: GroupResult) -> Iterator[str]:
    for member in group.results:
        if isinstance(member, GroupResult):  # a group inside the group
            yield from _member_ids(member)
        else:
            yield member.id


def state_of(result: Result | None) -> str:
    return states.PENDING if result is None else result.state or states.PENDING


def exception_of(value: Any) -> dict[str, str]:
    """A stored exception as {exc_type, exc_message}, from any serializer."""
    if isinstance(value, BaseException):
        return {"exc_type": type(value).__name__, "exc_message": str(value)}
    if isinstance(value, dict) and "exc_type" in value:
        message = value.get("exc_message")
        if isinstance(message, (list, tuple)):
            message = " ".join(str(part) for part in message)
        return {"exc_type": str(value["exc_type"]), "exc_message": "" if message is None else str(message)}
    return {"exc_type": type(value).__name__, "exc_message": str(value)}


def pretty(value: Any) -> str:
    """A decoded value as indented JSON (anything JSON cannot say as its repr)."""
    try:
        return json.dumps(value, indent=2, ensure_ascii=False, default=repr, sort_keys=False)
    except (TypeError, ValueError):
        return repr(value)
