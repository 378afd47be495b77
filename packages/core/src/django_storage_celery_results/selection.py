"""Which stored results a person means: the filters the command line and the
admin share, and the walks over an Inventory that apply them.

A filter on age is answered by the listing's modified times; only a filter on
what a result holds (state, task name) reads results.
"""

from __future__ import annotations

import datetime
import fnmatch
import itertools
from collections.abc import Iterator
from dataclasses import dataclass

from .inventory import CHORD, GROUP, TASK, Entry, Inventory, Result


@dataclass(frozen=True)
class Selection:
    """Which stored results a command or a page is about."""

    kind: str = TASK
    states: frozenset[str] = frozenset()
    tasks: tuple[str, ...] = ()
    older_than: datetime.datetime | None = None
    newer_than: datetime.datetime | None = None

    @property
    def reads_results(self) -> bool:
        """A filter on what a result holds: each candidate must be read."""
        return bool(self.states or self.tasks)

    @property
    def by_age(self) -> bool:
        return self.older_than is not None or self.newer_than is not None

    def age_fits(self, when: datetime.datetime | None) -> bool | None:
        """Whether a time is inside the age filters; None when the time is unknown."""
        if not self.by_age:
            return True
        if when is None:
            return None
        if self.older_than is not None and not when < self.older_than:
            return False
        return not (self.newer_than is not None and not when > self.newer_than)

    def listed_fits(self, entry: Entry) -> bool:
        """The test the listing alone can make: False only when it surely fails."""
        return self.age_fits(entry.modified) is not False

    def fits(self, result: Result) -> bool:
        if self.age_fits(result.when) is not True:
            return False
        if self.states and result.state not in self.states:
            return False
        return not (
            self.tasks and not any(fnmatch.fnmatchcase(result.task_name or "", t) for t in self.tasks)
        )

    def describe(self) -> str:
        words = {TASK: "task results", GROUP: "group results", CHORD: "chord bookkeeping objects"}[self.kind]
        parts = [words]
        if self.states:
            parts.append(f"in state {' or '.join(sorted(self.states))}")
        if self.tasks:
            parts.append(f"of task {' or '.join(self.tasks)}")
        if self.older_than:
            parts.append(f"older than {self.older_than.isoformat(timespec='seconds')}")
        if self.newer_than:
            parts.append(f"newer than {self.newer_than.isoformat(timespec='seconds')}")
        return " ".join(parts)


def select(inventory: Inventory, selection: Selection, limit: int | None = None) -> Iterator[Result]:
    """The results the selection names, read only where a task result's
    content is shown or filtered on, or its age is not in the listing.

    With a limit and no filter that needs a read, exactly that many are read;
    with one, at most the read window (the backend's pool) more than needed."""
    entries: Iterator[Entry] = (
        entry for entry in inventory.entries([selection.kind]) if selection.listed_fits(entry)
    )
    if limit is not None and not (selection.reads_results or selection.by_age):
        entries = itertools.islice(entries, limit)
    if selection.kind != TASK:
        for entry in entries:
            result = Result(entry, size=entry.size)
            if selection.age_fits(entry.modified):
                yield result
        return
    for result in inventory.read(entries):
        if selection.fits(result):
            yield result


def select_for_purge(inventory: Inventory, selection: Selection) -> Iterator[Result]:
    """As select(), but by age alone a task result is not read when the listing dates it."""
    if selection.kind == TASK and not selection.reads_results:
        for entry in inventory.entries([TASK]):
            fits = selection.age_fits(entry.modified)
            if fits:
                yield Result(entry, size=entry.size)
            elif fits is None:  # no modified time in this storage's listing: its date_done tells
                found = inventory.read_one(entry)
                if found is not None and selection.fits(found):
                    yield found
        return
    yield from select(inventory, selection)


def purge(inventory: Inventory, selection: Selection, batch: int) -> Iterator[list[Entry]]:
    """Delete what the selection names in batches, yielding each batch once it is gone."""
    return inventory.delete((result.entry for result in select_for_purge(inventory, selection)), batch)
