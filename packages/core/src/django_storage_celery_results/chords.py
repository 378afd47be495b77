"""Chords without polling, on storages that write conditionally.

Celery counts a chord's finished header tasks with an atomic counter where
the store has one, and otherwise polls with ``celery.chord_unlock``. Here the
storage counts the *set* of finished header task ids, not a number, so a
redelivered or retried header task adds nothing, and a create-only or
version-matched write elects the one caller that sends the callback: it is
sent exactly once however many workers race. Two shapes, by what the store
does cheaply:

* ``MarkerCounter`` (object stores, whose listing of a prefix costs one
  request): header tasks are counted in buckets of ``BUCKET_SIZE`` by their
  position in the header (``request.group_index``, which Celery gives each
  task of a flat header). Each finished header task writes a marker named
  after it in its bucket and lists that bucket (at most one page). When the
  chord is applied, each bucket gets one ``.expect`` marker saying how many
  tasks it holds and how many buckets there are, so the listing tells the
  finisher whether its bucket is full. A bucket is split in sub-buckets of
  ``SUB_BUCKET_SIZE`` positions: the finisher first lists its sub-bucket,
  and only the one that sees it full lists the bucket (the callback
  signature, which every header task carries, holds the header's number of
  positions, ``POSITIONS_KEY``, so a finisher knows its sub-bucket's count
  without a read). A chord of one bucket is then fired
  by whoever sees the bucket full and creates ``fired``; with more buckets,
  that finisher creates ``full~<n>`` and lists ``full~`` (at most
  FULL_GROUP_SIZE names) to see whether every bucket is full; a chord of
  more buckets than that counts them in groups the same way, one level up
  (``full~<group>~<n>``, then ``fullgroup~<group>``), so no listing grows
  with N. Every writer writes before it
  lists and listings are strongly consistent, so the last writer at each
  level (sub-bucket, bucket, group, chord) always sees the set complete: 3
  requests per header task (its result, its marker, one listing of about
  SUB_BUCKET_SIZE / 2 names), one more listing per sub-bucket and
  O(1/BUCKET_SIZE) more, whatever N. A task without a position, or with
  one outside the header, takes its place from the group record, so no
  place stays empty. The finisher whose create made ``full~<n>``, unless
  it fires the chord, then reads the bucket's results and stores them in
  one ``joined~<n>`` snapshot (snapshots.py), so the join after the last
  header task reads one object per bucket and one bucket of results, not N
  results: the other reads happen while the rest of the header still runs.

  ``AppendCounter`` (a store that appends to an object and answers how many
  appends it holds: Azure append blobs) keeps these names but makes each
  bucket's ``.expect`` marker an append object: a finished header task
  appends a line naming itself to it instead of writing a marker and
  listing, and only an append whose answer reaches the bucket's count reads
  the lines (a redelivered or retried task appends twice; its id counts
  once). That is 2 requests per header task (its result, one append). The
  line carries the task's stored result when it is small
  (INLINE_RESULT_LIMIT), so the join reads one append object per bucket
  (carried_results) and a bucket needs a snapshot only of what its lines
  do not carry. A task without a place, or a size correction, appends a line that sends
  the finishers after it to the safe path below; a correction also seals
  the append objects, so the appends after it fail and those finishers
  write markers, which the safe path counts with the lines.

  Where positions cannot be trusted (a nested header, whose size Celery
  corrects with ``set_chord_size`` and whose inner positions collide; a
  task that is not in the group record), a finisher counts the distinct
  task ids under the whole chord prefix against the size instead: O(N) per
  task, but always right. A task without a position also marks every bucket
  ``.u-<id>``, so the finishers that come after it take the same safe path.

* ``BucketStateCounter`` (a local folder, where listing means reading the
  whole directory but a version-matched write is a lock held for
  microseconds): the same two levels as state objects, one per bucket of
  ``FOLDER_BUCKET_SIZE`` header tasks (their ids) and one per chord (its
  size and the full buckets), updated by version-matched writes retried
  with jittered backoff when another writer won. No file ever holds more
  than one bucket of ids. ``StateObjectCounter``, one state object holding
  every id, is what it keeps for a nested header.

Exactly once, whatever else happens to the markers: the one create of
``fired`` elects the sender, and ``_fire_chord`` deletes the group record
before any marker. A finisher that wins ``fired`` after the chord was fired
and cleaned up finds no group record, removes its stray marker and does
nothing more. Create-only markers hold the writer's task id, so a writer
whose create was applied but whose answer was lost (and whose retry was
refused as a conflict) recognises its own write. That token belongs to one
call of record(), not to the task: a redelivery of the same task racing
it is another voter.

Both reach the storage only through ``ChordStore``, the small public face
of the backend (named objects read decoded and written encoded, listed and
deleted; it retries transient errors), and name their objects through
``ChordKeys``.
"""

from __future__ import annotations

import abc
import base64
import contextlib
import logging
import random
import re
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

from .adapters import CREATE, OVERWRITE, PutMode, Update
from .exceptions import VersionMismatch
from .keys import KeyLayout

logger = logging.getLogger(__name__)

#: Conflicting writers retry this often before the chord is failed.
MAX_ROUNDS = 40
#: Jittered exponential backoff between conflicting rounds, in seconds.
BACKOFF_START = 0.002
BACKOFF_CAP = 0.25
#: Header tasks per bucket. A listing page holds 1,000 names (5,000 on
#: Azure), but each finisher lists its whole bucket, and a listing's cost
#: grows with the names it returns (moto answers 1,000 in about 440 ms, 100
#: in about 60 ms; botocore parses each name): 100 keeps every listing small
#: for 0.02 more requests per task (the full~ marker and its listing), and
#: the full~ level stays one page up to 100,000 header tasks.
BUCKET_SIZE = 100
#: Header tasks per sub-bucket: a finisher first lists its sub-bucket (at most
#: this many names) and lists its whole bucket only when the sub-bucket is
#: full, so a listing returns about 11 names per task rather than about 50
#: (moto spends most of a listing serialising its names, botocore parsing
#: their timestamps), for 1/SUB_BUCKET_SIZE more listings per task.
SUB_BUCKET_SIZE = 10
#: Full buckets per group one level up, in a chord of more buckets than
#: this: a bucket's last finisher lists the full buckets of its group only
#: (at most this many names), and a group's last one the full groups, so no
#: listing grows with N (up to it, one listing of every full bucket, which
#: saves a chord the group level's two requests).
FULL_GROUP_SIZE = 100
#: The key apply_chord adds to the callback signature, which every header
#: task carries as request.chord: the number of positions of a flat header,
#: which lets a finisher tell how many tasks its sub-bucket holds.
POSITIONS_KEY = "storage_chord_positions"
#: Header tasks per bucket on the folder, where each finisher rewrites its
#: bucket's state object: small, so a rewrite stays a few KiB.
FOLDER_BUCKET_SIZE = 100
#: The largest stored result (bytes) a header task's append line carries for
#: the join (AppendCounter), so the join reads one object per bucket; the
#: backend lowers it to keep a bucket's lines far below result_storage_max_size.
INLINE_RESULT_LIMIT = 4096
#: Chords this process applied, remembered so set_chord_size can tell a
#: correction from the size it already wrote.
PLANS_LIMIT = 4096


@dataclass(frozen=True)
class DecodedObject:
    """A stored object's decoded value and the version a conditional write matches."""

    value: Any
    version: str | None


class ChordStore(Protocol):
    """What chord counting needs of the backend (transient errors retried)."""

    def read_decoded(self, name: str) -> DecodedObject | None:
        """The decoded object stored under name, or None."""

    def write_encoded(self, name: str, value: Any, mode: PutMode = OVERWRITE) -> str | None:
        """Encode value and store it under name; VersionMismatch when mode's condition fails."""

    def list_names(self, prefix: str) -> list[str]:
        """The names of the stored objects that start with prefix."""

    def delete_names(self, names: Iterable[str]) -> None:
        """Delete these objects; missing ones are not an error."""

    def snapshot(self, name: str, task_ids: Iterable[str]) -> None:
        """Keep what these finished header tasks stored under name, for the
        chord's join (best effort: never raises; the join reads what it lacks)."""

    def each(self, call: Callable[[str], object], names: Iterable[str]) -> None:
        """call(name) for every name, in parallel where the store takes parallel requests."""

    # Only where the store appends (AppendCounter):

    def create_appendable(self, name: str) -> None:
        """Create name as an empty object that append_line() adds to."""

    def append_line(self, name: str, line: str) -> int | None:
        """Add a line to name; how many appends it holds, or None when it takes none."""

    def read_lines(self, name: str) -> list[str] | None:
        """The lines appended to name, or None when it is no object that takes appends."""

    def seal(self, name: str) -> None:
        """Refuse every later append to name."""


@dataclass(frozen=True)
class ChordKeys:
    """The names of one chord's bookkeeping objects (and of its group record)."""

    layout: KeyLayout
    prefix: str
    group_prefix: str = "celery-taskset-meta-"

    def group(self, group_id: str) -> str:
        return self.layout.name(self.group_prefix, group_id)

    def state(self, group_id: str) -> str:
        return self.layout.name(self.prefix, group_id)

    def members(self, group_id: str) -> str:
        return self.layout.members(self.prefix, group_id)

    def member(self, group_id: str, member: str) -> str:
        return self.layout.member(self.prefix, group_id, member)

    def task(self, task_id: str) -> str:
        return self.layout.encode(task_id)


@dataclass(frozen=True)
class Finished:
    """A finished header task, as the worker that ran it knows it."""

    task_id: str
    #: Its place in the header (request.group_index), if known.
    position: int | None = None
    #: How many places a flat header has, as apply_chord wrote them into the
    #: callback signature (request.chord), if known.
    positions: int | None = None
    #: What the task's own write stored, if small: a counter may keep it for
    #: the join (carried_results).
    payload: bytes | None = None


class ChordCounter(abc.ABC):
    """Counts a chord's finished header tasks and elects the one that fires it."""

    def __init__(self, store: ChordStore, keys: ChordKeys) -> None:
        self.store = store
        self.keys = keys
        self._lock = threading.Lock()
        #: group id -> (size, flat) of the chords this process applied.
        self._plans: OrderedDict[str, tuple[int, bool]] = OrderedDict()

    def remember(self, group_id: str, size: int, flat: bool) -> None:
        with self._lock:
            self._plans[group_id] = (size, flat)
            while len(self._plans) > PLANS_LIMIT:
                self._plans.popitem(last=False)

    def applied(self, group_id: str) -> tuple[int, bool] | None:
        """(size, flat) as this process applied the chord, once (set_chord_size asks)."""
        with self._lock:
            return self._plans.pop(group_id, None)

    @abc.abstractmethod
    def start(self, group_id: str, size: int, flat: bool = True) -> None:
        """Record the size when the chord is applied (before any header task runs).

        flat: every header task reports with a distinct position 0..size-1
        (no group nested in the header).
        """

    @abc.abstractmethod
    def set_size(self, group_id: str, size: int) -> None:
        """Correct the size where Celery counts a nested header differently.

        Celery calls this before it sends the last header task, so the
        correction never completes a chord by itself.
        """

    @abc.abstractmethod
    def record(self, group_id: str, finished: Finished) -> bool:
        """Add a finished header task; True for exactly one caller: the one that fires."""

    def _position(self, group_id: str, task_id: str) -> int | None:
        """Where task_id stands in the chord's flat header, from the group record."""
        stored = self.store.read_decoded(self.keys.group(group_id))
        try:
            children = stored.value["result"][1] if stored else []
            ids = [child[0][0] for child in children if child[1] is None]
        except (TypeError, KeyError, IndexError):
            return None
        if len(ids) != len(children) or task_id not in ids:
            return None  # a nested header, or not one of its tasks
        return ids.index(task_id)

    def fired_by(self, group_id: str, task_id: str) -> None:
        """Called when record() elected task_id but the chord turned out fired already."""
        self.forget(group_id)

    def snapshots(self, group_id: str, size: int) -> list[str]:
        """The names of the snapshots of header results (snapshots.py) that
        record() stored for a chord of size header tasks, for its join."""
        return []

    def carried_results(self, group_id: str, size: int) -> dict[str, bytes]:
        """The stored results, by task id, that record() kept with the
        bookkeeping of a chord of size header tasks, for its join."""
        return {}

    @abc.abstractmethod
    def forget(self, group_id: str) -> None:
        """Remove the chord's bookkeeping."""


@dataclass
class ChordProgress:
    """What the state object of a chord holds: its size and the finished header ids."""

    size: int | None = None
    done: set[str] = field(default_factory=set)

    @property
    def complete(self) -> bool:
        return self.size is not None and len(self.done) >= self.size

    def dump(self) -> dict[str, Any]:
        return {"size": self.size, "done": sorted(self.done)}

    @classmethod
    def load(cls, meta: dict[str, Any]) -> ChordProgress:
        return cls(meta.get("size"), set(meta.get("done") or ()))


class ChordConflict(Exception):
    """The chord state kept changing under every conditional write."""


def backoff(attempt: int) -> None:
    time.sleep(random.uniform(0, min(BACKOFF_CAP, BACKOFF_START * 2**attempt)))


class StateObjectCounter(ChordCounter):
    """One state object per chord, updated by version-matched writes."""

    def start(self, group_id: str, size: int, flat: bool = True) -> None:
        self.update(group_id, lambda progress: _with_size(progress, size))

    def set_size(self, group_id: str, size: int) -> None:
        self.update(group_id, lambda progress: _with_size(progress, size))

    def record(self, group_id: str, finished: Finished) -> bool:
        task_id = finished.task_id

        def add(progress: ChordProgress | None) -> ChordProgress | None:
            progress = progress or ChordProgress()
            if task_id in progress.done:
                return None  # redelivered: already counted
            return ChordProgress(progress.size, progress.done | {task_id})

        after = self.update(group_id, add)
        # add() grows the set by one per write, so only one write completes it
        return after is not None and after.complete and len(after.done) == after.size

    def update(
        self, group_id: str, change: Callable[[ChordProgress | None], ChordProgress | None]
    ) -> ChordProgress | None:
        """Apply change to the stored progress with conditional writes until one wins.

        Returns the progress written, or None when change wrote nothing.
        """

        def on_dict(stored: dict[str, Any] | None) -> dict[str, Any] | None:
            after = change(ChordProgress.load(stored) if stored is not None else None)
            return None if after is None else {**(stored or {}), **after.dump()}

        written = self.update_object(self.keys.state(group_id), on_dict)
        return None if written is None else ChordProgress.load(written)

    def update_object(
        self, name: str, change: Callable[[dict[str, Any] | None], dict[str, Any] | None]
    ) -> dict[str, Any] | None:
        """Apply change to the stored object with conditional writes until one wins.

        Returns the object written, or None when change wrote nothing.
        """
        for attempt in range(MAX_ROUNDS):
            stored = self.store.read_decoded(name)
            after = change(stored.value if stored else None)
            if after is None:
                return None
            mode: PutMode = CREATE if stored is None or stored.version is None else Update(stored.version)
            try:
                self.store.write_encoded(name, after, mode)
            except VersionMismatch:
                backoff(attempt)
                continue
            return after
        raise ChordConflict(f"the chord state {name} changed under {MAX_ROUNDS} conditional writes")

    def fired_by(self, group_id: str, task_id: str) -> None:
        pass  # the state object is the chord's only bookkeeping: nothing stray to remove

    def forget(self, group_id: str) -> None:
        self.store.delete_names([self.keys.state(group_id)])


def buckets_for(size: int, per: int) -> int:
    return max(1, -(-size // per))


def bucket_count(size: int, number: int, per: int) -> int:
    """How many header tasks bucket number of a chord of size holds, per to a bucket."""
    return max(0, min(per, size - number * per))


def valid_position(position: Any) -> bool:
    return isinstance(position, int) and not isinstance(position, bool) and position >= 0


def _with_size(progress: ChordProgress | None, size: int) -> ChordProgress | None:
    progress = progress or ChordProgress()
    if progress.size == size:
        return None
    return ChordProgress(size, progress.done)


@dataclass(frozen=True)
class Expect:
    """What the ``.expect`` marker of a bucket says: its tasks, the chord's size and buckets."""

    count: int
    size: int
    buckets: int

    PATTERN = re.compile(r"\.expect-(\d+)-of-(\d+)-in-(\d+)")

    def name(self) -> str:
        return f".expect-{self.count}-of-{self.size}-in-{self.buckets}"

    @classmethod
    def parse(cls, text: str) -> Expect | None:
        found = cls.PATTERN.fullmatch(text)
        return cls(*(int(part) for part in found.groups())) if found else None


@dataclass(frozen=True)
class Vote:
    """What a create-only marker holds: the header task and a token of the one call."""

    task_id: str
    token: str

    def dump(self) -> dict[str, str]:
        return {"task": self.task_id, "token": self.token}

    def cast(self, stored: Any) -> bool:
        """True when the stored marker is this vote."""
        return isinstance(stored, dict) and stored.get("token") == self.token


@dataclass
class Listing:
    """What a listing of (part of) a chord's markers shows."""

    #: Finished header tasks that wrote a positional marker.
    placed: set[str] = field(default_factory=set)
    #: Finished header tasks without a (usable) position.
    unplaced: set[str] = field(default_factory=set)
    expect: Expect | None = None
    resized: bool = False
    #: size1- (as applied, nested header) and size2- (corrected) markers.
    sizes: dict[str, int] = field(default_factory=dict)
    fired: bool = False
    #: The members that are buckets' .expect markers (AppendCounter's append objects).
    expects: list[str] = field(default_factory=list)
    #: Stored results the lines of append objects carry, by task name.
    results: dict[str, bytes] = field(default_factory=dict)

    @property
    def done(self) -> set[str]:
        return self.placed | self.unplaced

    def size(self) -> int | None:
        """The size to count against: corrected, else applied."""
        for kind in MarkerCounter.SIZES[::-1]:
            if kind in self.sizes:
                return self.sizes[kind]
        return self.expect.size if self.expect else None


class MarkerCounter(ChordCounter):
    """Markers per finished header task in buckets by position, each bucket
    decided by one listing, a marker per full bucket counted one level up."""

    FIRED = "fired"
    FULL = "full~"
    #: A group of FULL_GROUP_SIZE full buckets (a chord of more buckets than that).
    FULL_GROUP = "fullgroup~"
    #: A snapshot of a full bucket's results, read by the join (snapshots.py).
    JOINED = "joined~"
    UNPLACED = ".u-"
    RESIZED = ".resized"
    #: What a finished header task wrote before the buckets (version 1.0.0 previews).
    LEGACY_DONE = "done-"
    #: The size as the chord was applied (nested header), then as Celery corrected it.
    SIZES = ("size1-", "size2-")

    @staticmethod
    def bucket(number: int) -> str:
        return f"b{number}~"

    @classmethod
    def sub_bucket(cls, number: int, sub: int) -> str:
        return f"{cls.bucket(number)}{sub}~"

    def _mark(self, group_id: str, member: str, value: Any = None, mode: PutMode = OVERWRITE) -> None:
        name = self.keys.member(group_id, member)
        for attempt in range(MAX_ROUNDS):
            try:
                self.store.write_encoded(name, value or {}, mode)
                return
            except VersionMismatch:
                if mode is not OVERWRITE:
                    raise
                backoff(attempt)  # a refused overwrite: a store's hiccup, try again
        raise ChordConflict(f"the marker {name} was refused {MAX_ROUNDS} times")

    def _list(self, group_id: str, within: str = "") -> Listing:
        prefix = self.keys.members(group_id)
        listing = Listing()
        for name in self.store.list_names(prefix + within):
            member = name[len(prefix) :]
            bucket, sep, rest = member.partition("~")
            if sep and bucket[:1] == "b" and bucket[1:].isdigit():
                sub, sub_sep, inner = rest.partition("~")
                if sub_sep and sub.isdigit():  # in a sub-bucket
                    if inner == self.RESIZED:
                        listing.resized = True
                    elif inner and not inner.startswith("."):
                        listing.placed.add(inner)
                elif rest.startswith(self.UNPLACED):
                    listing.unplaced.add(rest[len(self.UNPLACED) :])
                elif rest == self.RESIZED:
                    listing.resized = True
                elif rest.startswith("."):
                    expect = Expect.parse(rest)
                    if expect is not None:
                        listing.expect = listing.expect or expect
                        listing.expects.append(member)
                else:
                    listing.placed.add(rest)
            elif member == self.FIRED:
                listing.fired = True
            elif member.startswith(self.LEGACY_DONE):  # a chord applied before the buckets
                listing.unplaced.add(member[len(self.LEGACY_DONE) :])
            else:
                for kind in self.SIZES:
                    if member.startswith(kind) and member[len(kind) :].isdigit():
                        listing.sizes[kind] = int(member[len(kind) :])
        return listing

    # -- apply and size correction -------------------------------------------------

    def start(self, group_id: str, size: int, flat: bool = True) -> None:
        self.remember(group_id, size, flat)
        if not flat:  # positions collide: every finisher counts the whole chord
            self._mark(group_id, f"{self.SIZES[0]}{size}")
            return
        buckets = buckets_for(size, BUCKET_SIZE)
        members = [
            self.bucket(number) + Expect(bucket_count(size, number, BUCKET_SIZE), size, buckets).name()
            for number in range(buckets)
        ]
        # in any order: no header task runs before apply returns
        self.store.each(lambda member: self._write_expect(group_id, member), members)

    def _write_expect(self, group_id: str, member: str) -> None:
        self._mark(group_id, member)

    def set_size(self, group_id: str, size: int) -> None:
        plan = self.applied(group_id)
        if plan is None:  # applied by another process: what did it write?
            expect = self._list(group_id, self.bucket(0)).expect
            plan = (expect.size, True) if expect else (0, False)
        applied, flat = plan
        if flat and applied == size:
            return  # the size apply wrote: nothing to correct
        self._mark(group_id, f"{self.SIZES[1]}{size}")
        if flat:
            self._mark_resized(group_id, applied)

    def _mark_resized(self, group_id: str, applied: int) -> None:
        """Positions no longer add up to the size: every finisher from now on
        counts the whole chord (Celery sends the last header task after this,
        so the last finisher sees it)."""
        members = []
        for number in range(buckets_for(applied, BUCKET_SIZE)):
            members.append(self.bucket(number) + self.RESIZED)
            # and every sub-bucket, which a finisher lists before its bucket
            held = bucket_count(applied, number, BUCKET_SIZE)
            for sub in range(buckets_for(held, SUB_BUCKET_SIZE)):
                members.append(self.sub_bucket(number, sub) + self.RESIZED)
        # all written before set_size returns, and before the last header task is sent
        self.store.each(lambda member: self._mark(group_id, member), members)

    # -- header tasks ----------------------------------------------------------------

    def record(self, group_id: str, finished: Finished) -> bool:
        task_id, position, positions = finished.task_id, finished.position, finished.positions
        task = self.keys.task(task_id)
        # what this call's create-only markers hold: unique to the call, not the
        # task, so a redelivery of the same task racing it is someone else
        vote = Vote(task_id, uuid.uuid4().hex)
        places = positions if valid_position(positions) else None
        if places is not None and not (valid_position(position) and cast(int, position) < places):
            # no position, or one outside the header: the group record knows
            # where the task stands (an empty place would keep its sub-bucket
            # from ever looking full)
            position = self._position(group_id, task_id)
        if not valid_position(position):
            return self._record_unplaced(group_id, vote, task)
        assert position is not None
        number, sub = divmod(position, BUCKET_SIZE)
        sub //= SUB_BUCKET_SIZE
        self._mark(group_id, self.sub_bucket(number, sub) + task)
        if places is not None:
            # Only the last writer of a sub-bucket can be the last of its
            # bucket: the others see it short and stop here (a corrected
            # size marks every sub-bucket, and then every finisher goes on).
            held = bucket_count(bucket_count(places, number, BUCKET_SIZE), sub, SUB_BUCKET_SIZE)
            seen = self._list(group_id, self.sub_bucket(number, sub))
            if not seen.resized and len(seen.placed) < held:
                return False
        seen = self._list(group_id, self.bucket(number))
        expect = seen.expect
        if expect is None or seen.resized or (seen.unplaced and expect.buckets > 1):
            return self._count_all(group_id, vote, task, placed=expect is not None)
        done = len(seen.done)
        if done < expect.count:
            return False
        if done > expect.count:  # more tasks than positions: never trust them
            return self._count_all(group_id, vote, task, placed=False)
        return self._bucket_full(group_id, number, expect, vote, seen.placed)

    def _bucket_full(self, group_id: str, number: int, expect: Expect, vote: Vote, unread: set[str]) -> bool:
        """Seen bucket number full: elect the one that marks it full, and the
        one that fires the chord (unread: the names of its tasks whose results
        the join would have to read)."""
        if expect.buckets == 1:
            return self._elect(group_id, self.FIRED, vote)
        first = self._elect(group_id, self.full_bucket(number, expect.buckets), vote)
        fires = self._every_bucket_full(group_id, number, expect.buckets) and self._elect(
            group_id, self.FIRED, vote
        )
        if first and not fires and unread:
            # The one that made the bucket full keeps its results for the
            # join, which then reads one snapshot per bucket rather than every
            # result after the last header task. The one that fires reads its
            # own bucket in the join; a snapshot not written yet is read there too.
            task_ids = (KeyLayout.decode(task) for task in unread)
            self.store.snapshot(
                self.keys.member(group_id, f"{self.JOINED}{number}"), [task for task in task_ids if task]
            )
        return fires

    @classmethod
    def full_bucket(cls, number: int, buckets: int) -> str:
        """The marker of a full bucket: ``full~<n>``, or ``full~<group>~<n>``
        in a chord of more than FULL_GROUP_SIZE buckets."""
        if buckets <= FULL_GROUP_SIZE:
            return f"{cls.FULL}{number}"
        return f"{cls.full_group(number // FULL_GROUP_SIZE)}{number}"

    @classmethod
    def full_group(cls, group: int) -> str:
        """The prefix of the full buckets of one group."""
        return f"{cls.FULL}{group}~"

    def _every_bucket_full(self, group_id: str, number: int, buckets: int) -> bool:
        """Whether every bucket is full, seen by one that just marked bucket number full.

        Each level is decided as the buckets are: its writers write before
        they list, so the last writer of a group sees it full and the last
        writer of the groups sees them all.
        """
        prefix = self.keys.members(group_id)
        if buckets <= FULL_GROUP_SIZE:
            return len(self.store.list_names(prefix + self.FULL)) >= buckets
        group = number // FULL_GROUP_SIZE
        in_group = bucket_count(buckets, group, FULL_GROUP_SIZE)
        if len(self.store.list_names(prefix + self.full_group(group))) < in_group:
            return False
        self._mark(group_id, f"{self.FULL_GROUP}{group}")
        return len(self.store.list_names(prefix + self.FULL_GROUP)) >= buckets_for(buckets, FULL_GROUP_SIZE)

    def _record_unplaced(self, group_id: str, vote: Vote, task: str) -> bool:
        """A header task without a position: marked in bucket 0, decided there for a
        chord of one bucket, else counted over the whole chord."""
        self._mark(group_id, self.bucket(0) + self.UNPLACED + task)
        seen = self._list(group_id, self.bucket(0))
        expect = seen.expect
        if expect is None or seen.resized or expect.buckets > 1:
            return self._count_all(group_id, vote, task, placed=False)
        if len(seen.done) < expect.count:
            return False
        return self._elect(group_id, self.FIRED, vote)

    def _count_all(self, group_id: str, vote: Vote, task: str, placed: bool) -> bool:
        """The safe path: distinct task ids under the whole chord against its size."""
        seen = self._list_chord(group_id)
        if not placed and seen.expect is not None and seen.expect.buckets > 1:
            # Finishers counting one bucket would never see this task: mark
            # every bucket so the ones after us count the whole chord too,
            # then look again.
            self._mark_unplaced(group_id, task, seen)
            seen = self._list_chord(group_id)
        size = seen.size()
        if seen.fired or size is None or len(seen.done) < size:
            return False
        return self._elect(group_id, self.FIRED, vote)

    def _list_chord(self, group_id: str) -> Listing:
        """Everything the chord's bookkeeping says, for the safe path."""
        return self._list(group_id)

    def _mark_unplaced(self, group_id: str, task: str, seen: Listing) -> None:
        """Mark task, which has no place, in every bucket."""
        assert seen.expect is not None
        for number in range(seen.expect.buckets):
            self._mark(group_id, self.bucket(number) + self.UNPLACED + task)

    def _elect(self, group_id: str, member: str, vote: Vote) -> bool:
        """Create the marker; True when this call's create is the one that made it."""
        try:
            self._mark(group_id, member, vote.dump(), CREATE)
            return True
        except VersionMismatch:
            pass
        # Our own create may have been applied and its answer lost, the
        # client's retry then refused: the marker says who wrote it.
        stored = self.store.read_decoded(self.keys.member(group_id, member))
        return stored is not None and vote.cast(stored.value)

    def snapshots(self, group_id: str, size: int) -> list[str]:
        if size <= BUCKET_SIZE:  # one bucket: record() stored none
            return []
        return self.store.list_names(self.keys.members(group_id) + self.JOINED)

    def forget(self, group_id: str) -> None:
        prefix = self.keys.members(group_id)
        fired = prefix + self.FIRED
        names = [name for name in self.store.list_names(prefix) if name != fired]
        # "fired" last, where the store deletes in order: until it goes no
        # late finisher is elected again (and one that is finds no group)
        self.store.delete_names([*names, fired])


class AppendCounter(MarkerCounter):
    """MarkerCounter's names, with each bucket's .expect marker an append
    object: a finished header task appends a line naming itself, and only an
    append whose answer reaches the bucket's count reads the lines."""

    #: Line prefixes: a placed header task, one without a place; and the line
    #: of a size correction.
    PLACED_LINE = "+"
    UNPLACED_LINE = "-"
    RESIZED_LINE = ".resized"

    def __init__(self, store: ChordStore, keys: ChordKeys) -> None:
        super().__init__(store, keys)
        #: Per thread: (group id, append object, its lines) that the finisher
        #: which fired the chord just read, so the join does not read them again.
        self._fired = threading.local()

    def _write_expect(self, group_id: str, member: str) -> None:
        self.store.create_appendable(self.keys.member(group_id, member))

    def _expect_of(self, group_id: str, number: int, places: int) -> tuple[Expect, str]:
        """Bucket number's Expect in a header of places positions, and the name of its append object."""
        expect = Expect(bucket_count(places, number, BUCKET_SIZE), places, buckets_for(places, BUCKET_SIZE))
        return expect, self.keys.member(group_id, self.bucket(number) + expect.name())

    def record(self, group_id: str, finished: Finished) -> bool:
        task_id, position, positions = finished.task_id, finished.position, finished.positions
        places = positions if valid_position(positions) else None
        if places is None:  # a callback without the header's places: apply wrote them in bucket 0
            expect = self._list(group_id, self.bucket(0)).expect
            places = expect.size if expect else None
        if places is None:  # a nested header: no append objects
            return super().record(group_id, finished)
        if not (valid_position(position) and cast(int, position) < places):
            position = self._position(group_id, task_id)
        vote = Vote(task_id, uuid.uuid4().hex)
        task = self.keys.task(task_id)
        line = self.PLACED_LINE + task
        if finished.payload is not None:  # the join then reads it here, not from the result
            line += " " + base64.b64encode(finished.payload).decode("ascii")
        if not valid_position(position):
            return self._record_unplaced(group_id, vote, task)
        number = cast(int, position) // BUCKET_SIZE
        expect, name = self._expect_of(group_id, number, places)
        appended = self.store.append_line(name, line)
        if appended is None:
            # not applied with append objects, or sealed by a size
            # correction since: the markers decide, as MarkerCounter's do
            return super().record(group_id, Finished(task_id, position, places))
        if appended < expect.count:  # repeats only add appends: fewer tasks than that
            return False
        seen = Listing(expect=expect)
        lines = self.store.read_lines(name)
        self._tally(seen, lines)
        if seen.resized or (seen.unplaced and expect.buckets > 1):
            return self._count_all(group_id, vote, task, placed=True)
        done = len(seen.done)
        if done < expect.count:
            return False
        if done > expect.count:  # more tasks than positions: never trust them
            return self._count_all(group_id, vote, task, placed=False)
        fired = self._bucket_full(group_id, number, expect, vote, seen.placed - seen.results.keys())
        self._fired.lines = (group_id, name, lines) if fired else None
        return fired

    def _tally(self, seen: Listing, lines: list[str] | None) -> None:
        """Add what an append object's lines say to seen (anything else in it counts for nothing)."""
        for line in lines or ():
            kind, name = line[:1], line[1:]
            if kind == self.PLACED_LINE and name:
                name, _, carried = name.partition(" ")
                seen.placed.add(name)
                seen.results.pop(name, None)  # a later line of the task is a later write
                if carried:
                    with contextlib.suppress(ValueError):
                        seen.results[name] = base64.b64decode(carried, validate=True)
            elif kind == self.UNPLACED_LINE and name:
                seen.unplaced.add(name)
            elif line == self.RESIZED_LINE:
                seen.resized = True

    def _tally_all(self, seen: Listing, names: list[str]) -> None:
        """Read these append objects in parallel and add what their lines say to seen."""
        found: list[list[str] | None] = []
        self.store.each(lambda name: found.append(self.store.read_lines(name)), names)
        for lines in found:
            self._tally(seen, lines)

    def _append_objects(self, group_id: str, places: int) -> list[str]:
        """The names of every bucket's append object in a header of places positions."""
        return [self._expect_of(group_id, n, places)[1] for n in range(buckets_for(places, BUCKET_SIZE))]

    def carried_results(self, group_id: str, size: int) -> dict[str, bytes]:
        seen = Listing()
        names = self._append_objects(group_id, size)
        fired, self._fired.lines = getattr(self._fired, "lines", None), None
        if fired and fired[0] == group_id and fired[1] in names:
            self._tally(seen, fired[2])  # read by this thread's record() a moment ago
            names.remove(fired[1])
        self._tally_all(seen, names)
        results = ((KeyLayout.decode(name), data) for name, data in seen.results.items())
        return {task_id: data for task_id, data in results if task_id}

    def _record_unplaced(self, group_id: str, vote: Vote, task: str) -> bool:
        seen = self._list_chord(group_id)
        if not seen.expects:  # not applied with append objects
            return super()._record_unplaced(group_id, vote, task)
        self._mark_unplaced(group_id, task, seen)
        return self._count_all(group_id, vote, task, placed=True)

    def _mark_unplaced(self, group_id: str, task: str, seen: Listing) -> None:
        """A line in every bucket's append object: its next readers take the safe path."""
        names = [self.keys.member(group_id, member) for member in seen.expects]
        self._append_everywhere(names, self.UNPLACED_LINE + task)

    def _append_everywhere(self, names: list[str], line: str) -> None:
        self.store.each(lambda name: self.store.append_line(name, line), names)

    def _list_chord(self, group_id: str) -> Listing:
        seen = self._list(group_id)
        self._tally_all(seen, [self.keys.member(group_id, member) for member in seen.expects])
        return seen

    def _mark_resized(self, group_id: str, applied: int) -> None:
        super()._mark_resized(group_id, applied)  # for the finishers whose appends fail from now on
        names = self._append_objects(group_id, applied)
        # a line for those that appended before the seal, then the seal
        self._append_everywhere(names, self.RESIZED_LINE)
        self.store.each(self.store.seal, names)


class BucketStateCounter(StateObjectCounter):
    """The folder: a state object per bucket of header tasks by position, and
    the chord's state object holding the full buckets.

    Each header task adds its id to its bucket's object (at most
    FOLDER_BUCKET_SIZE ids, spread by position modulo the number of buckets,
    so concurrent neighbours rarely write the same object) with a
    version-matched write; every finisher that finds
    its bucket full adds the bucket to the chord's object, and the one write
    that completes the set of full buckets also marks it fired. A task
    without a position finds it in the group record. A nested header (no
    bucket objects) keeps the whole set of ids in the chord's object, as
    StateObjectCounter does; after a size correction of a flat header the
    finishers count the ids of every bucket against the new size.
    """

    def bucket_name(self, group_id: str, number: int) -> str:
        return self.keys.member(group_id, f"b{number}")

    def start(self, group_id: str, size: int, flat: bool = True) -> None:
        self.remember(group_id, size, flat)
        if not flat:
            super().start(group_id, size)
            return
        buckets = buckets_for(size, FOLDER_BUCKET_SIZE)
        for number in range(buckets):
            state = {"count": size // buckets + (number < size % buckets), "done": []}
            self.store.write_encoded(self.bucket_name(group_id, number), state)
        top = {"size": size, "places": size, "done": [], "buckets": buckets, "full": [], "fired": False}
        self.store.write_encoded(self.keys.state(group_id), top)

    def set_size(self, group_id: str, size: int) -> None:
        plan = self.applied(group_id)
        if plan is None:  # applied by another process: what did it write?
            stored = self.store.read_decoded(self.keys.state(group_id))
            top = stored.value if stored else {}
            plan = (top.get("size") or 0, "buckets" in top)
        applied, flat = plan
        if flat and applied == size:
            return
        self.update_object(self.keys.state(group_id), lambda top: _resized(top, size))
        if flat:  # finishers from now on count every bucket (Celery sends the last task after this)
            for number in range(buckets_for(applied, FOLDER_BUCKET_SIZE)):
                self.update_object(self.bucket_name(group_id, number), lambda bucket: _resized(bucket, None))

    def record(self, group_id: str, finished: Finished) -> bool:
        task_id, position, positions = finished.task_id, finished.position, finished.positions
        places = positions if valid_position(positions) else self._places(group_id)
        if places is not None and not (valid_position(position) and cast(int, position) < places):
            # no position, or one outside the header: the group record knows
            position = self._position(group_id, task_id)
        number = bucket = None
        if valid_position(position):
            number = self._bucket_of(cast(int, position), places)
            bucket = self._add(self.bucket_name(group_id, number), task_id)
        if bucket is None and places is None:  # applied before the spread buckets, out of range
            position = self._position(group_id, task_id)
            if position is not None:
                number = position // FOLDER_BUCKET_SIZE
                bucket = self._add(self.bucket_name(group_id, number), task_id)
        if number is not None and bucket is not None:
            if bucket.get("resized"):
                return self._count_every_bucket(group_id, task_id, placed=True)
            return len(bucket["done"]) >= bucket["count"] and self._bucket_full(group_id, number)
        return self._count_every_bucket(group_id, task_id, placed=False)

    @staticmethod
    def _bucket_of(position: int, places: int | None) -> int:
        """Position p goes to bucket p mod the number of buckets, so the header
        tasks that finish together (neighbours) rewrite different objects;
        chords applied before that (no places known) by p // FOLDER_BUCKET_SIZE."""
        if places is None:
            return position // FOLDER_BUCKET_SIZE
        return position % buckets_for(places, FOLDER_BUCKET_SIZE)

    def _places(self, group_id: str) -> int | None:
        """The header's places, as apply wrote them in the chord's object (a
        finisher whose callback did not carry them: one read)."""
        stored = self.store.read_decoded(self.keys.state(group_id))
        places = stored.value.get("places") if stored and isinstance(stored.value, dict) else None
        return places if valid_position(places) else None

    def _add(self, name: str, task_id: str) -> dict[str, Any] | None:
        """The bucket with task_id added (written, or already there); None when there is no such bucket."""
        current: dict[str, Any] | None = None

        def add(bucket: dict[str, Any] | None) -> dict[str, Any] | None:
            nonlocal current
            current = bucket
            if bucket is None or task_id in bucket["done"]:
                return None
            return {**bucket, "done": [*bucket["done"], task_id]}

        return self.update_object(name, add) or current

    def _bucket_full(self, group_id: str, number: int) -> bool:
        def add_full(top: dict[str, Any] | None) -> dict[str, Any] | None:
            if top is None or top.get("fired") or number in top["full"]:
                return None
            full = [*top["full"], number]
            return {**top, "full": full, "fired": len(full) >= top["buckets"]}

        written = self.update_object(self.keys.state(group_id), add_full)
        return bool(written and written["fired"])

    def _count_every_bucket(self, group_id: str, task_id: str, placed: bool) -> bool:
        """A nested header, a corrected size, or a task without a place: count every id."""

        def add(top: dict[str, Any] | None) -> dict[str, Any] | None:
            if top is None or top.get("fired") or (placed and "buckets" not in top):
                return None
            done = top.get("done") or []
            if not placed and task_id not in done:
                top = {**top, "done": [*done, task_id]}
            ids = set(top.get("done") or [])
            for number in range(top.get("buckets", 0) if top.get("resized") else 0):
                stored = self.store.read_decoded(self.bucket_name(group_id, number))
                ids.update(stored.value["done"] if stored else ())
            if top.get("size") is None or len(ids) < top["size"]:
                return top if top.get("done") != done else None
            return {**top, "fired": True}

        written = self.update_object(self.keys.state(group_id), add)
        return bool(written and written.get("fired"))

    def forget(self, group_id: str) -> None:
        stored = self.store.read_decoded(self.keys.state(group_id))
        buckets = stored.value.get("buckets", 0) if stored and isinstance(stored.value, dict) else 0
        names = [self.bucket_name(group_id, number) for number in range(buckets)]
        self.store.delete_names([*names, self.keys.state(group_id)])


def _resized(state: dict[str, Any] | None, size: int | None) -> dict[str, Any] | None:
    if state is None:
        return None
    after = {**state, "resized": True}
    if size is not None:
        after["size"] = size
    return None if after == state else after


def counter_for(
    store: ChordStore, keys: ChordKeys, prefix_listing: bool, appends: bool = False
) -> ChordCounter:
    """Append objects where the store appends (Azure), markers where listing a
    prefix is one request (object stores), else state objects (a folder)."""
    if appends:
        return AppendCounter(store, keys)
    return (MarkerCounter if prefix_listing else BucketStateCounter)(store, keys)
