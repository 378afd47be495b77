"""The Celery result backend: Celery semantics over one StorageAdapter."""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import sys
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from celery import group, states
from celery.backends.base import KeyValueStoreBackend
from celery.canvas import maybe_signature
from celery.exceptions import ChordError
from celery.result import ResultSet, allow_join_result, result_from_tuple
from celery.utils.time import get_exponential_backoff_interval
from kombu.utils.encoding import bytes_to_str

from . import canvas, codec, expiry, snapshots
from .adapters import CREATE, OVERWRITE, Content, PutMode, StorageAdapter, StoredObject, Update, in_batches
from .chords import (
    BUCKET_SIZE,
    INLINE_RESULT_LIMIT,
    POSITIONS_KEY,
    ChordCounter,
    ChordKeys,
    DecodedObject,
    Finished,
    counter_for,
)
from .config import MAX_SIZE_SETTING, BackendSettings
from .exceptions import InvalidStoredResult, ResultTooLarge, StoredObjectTooLarge, VersionMismatch
from .expiry import CleanupReport
from .keys import KeyLayout
from .redact import StorageError

logger = logging.getLogger(__name__)

__all__ = ["StorageBackend"]

T = TypeVar("T")

#: Conditional-write rounds before a store gives up (each lost round means
#: another writer changed the same result in between).
MAX_WRITE_ROUNDS = 8
#: Results one round of a group read asks for at once (through the thread pool).
MGET_BATCH = 1000
#: Versions of results this process wrote, so a task's next state update
#: can go straight to a version-matched write without reading first.
KNOWN_VERSIONS_LIMIT = 4096


class StorageBackend(KeyValueStoreBackend):
    """Celery results in a Django Storage.

    Settings (from the Celery app's configuration) are read once, by
    ``BackendSettings.from_conf``; see the configuration docs.
    """

    supports_native_join = True
    supports_autoexpire = False
    supports_result_compression = True
    key_t = str

    def __init__(self, app: Any = None, url: str | None = None, **kwargs: Any) -> None:
        super().__init__(app=app, url=url, **kwargs)
        self.settings = BackendSettings.from_conf(self.app.conf)
        self.storage_config = self.settings.storage
        self.compression = self.settings.compression
        self.safe_to_retry = self.settings.safe_to_retry
        self.concurrency = self.settings.concurrency
        self.max_size = self.settings.max_size
        self.layout = KeyLayout(
            (self.task_keyprefix, self.group_keyprefix, self.chord_keyprefix),
            setting="result_backend_transport_options['global_keyprefix']",
        )
        self._content = Content(content_type=self.content_type)
        self._local = threading.local()
        self._reset_process_resources()
        _live_backends.add(self)
        # Build now so a storage that cannot be built fails at startup.
        adapter = self.adapter
        logger.debug("Celery results: %s via %s", self.storage_config.source, adapter)
        #: The largest stored result a chord's bookkeeping may carry for the join.
        self.inline_limit = min(INLINE_RESULT_LIMIT, self.max_size // (4 * BUCKET_SIZE))
        self.chord_counter: ChordCounter = counter_for(
            BookkeepingStore(self),
            ChordKeys(self.layout, self.chord_keyprefix, self.group_keyprefix),
            adapter.prefix_listing,
            adapter.appends,
        )

    # -- per-process resources -------------------------------------------------

    def _reset_process_resources(self) -> None:
        """Forget clients, threads and locks: they do not survive a fork."""
        self._lock = threading.Lock()
        self._adapter: StorageAdapter | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._versions: OrderedDict[str, str] = OrderedDict()

    @property
    def adapter(self) -> StorageAdapter:
        """This process's adapter, built on first use (again in a forked child)."""
        if self._adapter is None:
            with self._lock:
                if self._adapter is None:
                    adapter = self.storage_config.build_adapter()
                    adapter.read_limit = self.max_size
                    adapter.request_timeout = self.settings.timeout
                    self._adapter = adapter
        return self._adapter

    def _pool(self) -> ThreadPoolExecutor:
        adapter = self.adapter  # first: building it takes the same (non-reentrant) lock
        with self._lock:
            if self._executor is None:
                limit = adapter.max_concurrency or self.concurrency
                self._executor = ThreadPoolExecutor(
                    max_workers=min(self.concurrency, limit), thread_name_prefix="celery-results"
                )
            return self._executor

    def _remember(self, name: str, version: str | None) -> None:
        with self._lock:
            self._versions.pop(name, None)
            if version is not None:
                self._versions[name] = version
                while len(self._versions) > KNOWN_VERSIONS_LIMIT:
                    self._versions.popitem(last=False)

    def _known_version(self, name: str) -> str | None:
        with self._lock:
            return self._versions.get(name)

    # -- key-value primitives ----------------------------------------------------

    def _get_key_for(self, prefix: str, id: Any, key: str = "") -> str:  # noqa: A002
        if key:
            raise ValueError("storage result names take no key suffix")
        return self.layout.name(prefix, id)

    def get(self, key: str) -> bytes | None:
        return self._read(key)

    def _read(self, name: str, owner: tuple[str, str] | None = None) -> bytes | None:
        """The in-band bytes stored under name, never reading more than the size
        limit; owner ("task", id) names whose result it is in errors."""
        try:
            stored = self.adapter.read(name)
        except StoredObjectTooLarge as exc:
            size = f"{exc.size} bytes" if exc.size is not None else f"more than {self.max_size} bytes"
            problem = f"it is {size}, over the {self.max_size}-byte limit of {MAX_SIZE_SETTING}"
            if owner is not None:
                raise self._not_a_result(*owner, problem) from None
            raise self._not_a_stored_result(name, problem) from None
        return self._payload(name, stored)

    def _payload(self, name: str, stored: StoredObject | None) -> bytes | None:
        """The in-band bytes of a stored object, None when there is none."""
        # An empty object is never a result: a storage that creates the file
        # before writing it (a plain folder) shows it empty for a moment.
        # Celery's batch reads would try to decode b"", so report it missing.
        if stored is None or not stored.data:
            return None
        try:
            return _stored_bytes(stored)
        except ValueError as exc:  # labelled with an encoding we never write
            raise self._not_a_stored_result(name, str(exc)) from None

    def _not_a_stored_result(self, name: str, problem: str) -> InvalidStoredResult:
        return InvalidStoredResult(
            f"The object {name} in {self.adapter.describe()} is not a Celery result: {problem}", name
        )

    def mget(self, keys: Sequence[str]) -> list[bytes | None]:
        ahead = getattr(self._local, "read_ahead", None)
        if not ahead:
            return self._mget(keys)
        # The chord's join: what the snapshots hold, each used once (a result
        # that was not ready yet is read from the store when asked again).
        distinct = list(dict.fromkeys(keys))
        found = {key: ahead.pop(key) for key in distinct if key in ahead}
        missing = [key for key in distinct if key not in found]
        found.update(zip(missing, self._mget(missing), strict=True))
        return [found[key] for key in keys]

    def _mget(self, keys: Sequence[str]) -> list[bytes | None]:
        # Celery retries one result's read under result_backend_always_retry but
        # not batch reads (group joins); the chord's own join always retries.
        read: Callable[[str], bytes | None] = self.get
        if self.always_retry or getattr(self._local, "retry_reads", False):
            read = functools.partial(self.with_retries, self.get)
        return self._map(read, keys)

    def _map(self, call: Callable[[str], T], names: Iterable[str]) -> list[T]:
        """call(name) for each name, in order: through the thread pool where the
        store takes parallel requests, in bounded rounds (a group of 100,000 is
        100 rounds); the first error is raised."""
        names = list(names)
        if len(names) <= 1 or not self.adapter.parallel_reads:
            return [call(name) for name in names]
        values: list[T] = []
        for batch in in_batches(names, MGET_BATCH):
            values.extend(self._pool().map(call, batch))
        return values

    def set(self, key: str, value: bytes | str) -> None:
        self._remember(key, self._put(key, _as_bytes(value), OVERWRITE))

    def _put(self, name: str, payload: bytes, mode: PutMode) -> str | None:
        adapter = self.adapter
        content = self._content
        if adapter.content_labels:
            payload, content = codec.label(payload, self.content_type)
        return adapter.put(name, payload, mode, content)

    def delete(self, key: str) -> None:
        self._remember(key, None)
        self.adapter.delete(key)

    # -- named objects, for chord counting (chords.ChordStore) -------------------

    def read_decoded(self, name: str) -> DecodedObject | None:
        stored = self.adapter.read(name)
        if stored is None or not stored.data:
            return None
        return DecodedObject(self.decode(_stored_bytes(stored)), stored.version)

    def write_encoded(self, name: str, value: Any, mode: PutMode = OVERWRITE) -> str | None:
        return self._put(name, self.encode(value), mode)

    def list_names(self, prefix: str) -> list[str]:
        return list(self.adapter.list_names(prefix))

    def delete_names(self, names: Iterable[str]) -> None:
        names = list(names)
        for name in names:
            self._remember(name, None)
        self.adapter.delete_many(names)

    def create_appendable(self, name: str) -> None:
        self.adapter.create_appendable(name)

    def append_line(self, name: str, line: str) -> int | None:
        return self.adapter.append(name, f"{line}\n".encode())

    def read_lines(self, name: str) -> list[str] | None:
        data = self.adapter.read_appended(name)
        return None if data is None else data.decode("utf-8", "replace").splitlines()

    def seal(self, name: str) -> None:
        self.adapter.seal(name)

    def snapshot(self, name: str, task_ids: Iterable[str]) -> None:
        """Store what these header tasks stored, read now, in one object (snapshots.py)."""
        keys = [self.get_key_for_task(task_id) for task_id in task_ids]
        try:
            with self._retrying_reads():
                values = self.mget(keys)
            held = {key: value for key, value in zip(keys, values, strict=True) if value is not None}
            data = snapshots.pack(held)
            if len(data) > self.max_size:  # the join reads these results itself
                logger.debug("Snapshot %s skipped: %d bytes, over %s", name, len(data), MAX_SIZE_SETTING)
                return
            self.with_retries(self._put, name, data, OVERWRITE)
        except Exception as exc:  # a head start only: never fail the chord for it
            logger.warning("Snapshot %s of header results not stored (%s)", name, type(exc).__name__)

    def each(self, call: Callable[[str], object], names: Iterable[str]) -> None:
        self._map(call, names)

    def _read_snapshots(self, group_id: str, size: int) -> dict[str, bytes]:
        """The result names and bytes the chord's bookkeeping and snapshots hold;
        what cannot be read is left to the join."""
        try:
            carried = self.chord_counter.carried_results(group_id, size)
        except Exception as exc:  # transient errors were retried: the join reads every result
            logger.warning("Chord %s: header results in its bookkeeping not read (%s)", group_id, exc)
            carried = {}
        held = {self.get_key_for_task(task_id): data for task_id, data in carried.items()}
        try:
            names = self.chord_counter.snapshots(group_id, size)
        except Exception as exc:  # transient errors were retried: the join reads every result
            logger.warning("Chord %s: snapshots of header results not listed (%s)", group_id, exc)
            return held

        def read(name: str) -> dict[str, bytes]:
            try:
                stored = self.with_retries(self._read, name)
                return snapshots.unpack(stored) if stored else {}
            except Exception as exc:
                logger.warning("Snapshot %s of header results not used (%s)", name, exc)
                return {}

        for payloads in self._map(read, names):
            held.update(payloads)
        return held

    def _save_group(self, group_id: str, result: Any) -> Any:
        # with the date, cleanup can expire groups on storages without modified times
        meta = {"result": result.as_tuple(), "date_done": self.app.now().isoformat()}
        payload, size = self._encode_measured(meta)
        self._refuse_oversized("group", group_id, size)
        self.set(self.get_key_for_group(group_id), payload)
        return result

    def _refuse_oversized(self, kind: str, ident: str, size: int) -> None:
        """ResultTooLarge, before anything is written, for a payload over the limit."""
        if size > self.max_size:
            raise self._too_large(kind, ident, size)

    def _too_large(self, kind: str, ident: str, size: int, exception: str = "") -> ResultTooLarge:
        what = f"The {exception}failure" if exception else "The result"
        return ResultTooLarge(
            f"{what} of {kind} {ident!r} is {size} bytes serialized, over the {self.max_size}-byte "
            f"limit of {MAX_SIZE_SETTING}: it was not stored. Return something smaller (large "
            "outputs belong in files; return their names), or raise the limit.",
            ident,
            size,
        )

    # -- encoding --------------------------------------------------------------

    def encode(self, data: Any) -> bytes:
        return self._encode_measured(data)[0]

    def _encode_measured(self, data: Any) -> tuple[bytes, int]:
        """The bytes to store and the size the limit measures: the larger of the
        stored and the serialized size, since a reader refuses either past it."""
        _, _, serialized = self._encode(data)
        raw = _as_bytes(serialized)
        packed = codec.pack(raw, self.compression)
        return packed, max(len(raw), len(packed))

    def decode(self, payload: Any) -> Any:
        """The decoded payload; StoredObjectTooLarge for one that decompresses past the limit."""
        if payload is None:
            return None
        if isinstance(payload, (bytes, bytearray, memoryview)):
            payload = codec.unpack(bytes(payload), self.max_size)
        return super().decode(payload)

    def expands_past_limit(self) -> str:
        """Why a payload that decompresses past the size limit is not read."""
        return f"it decompresses to more than {self.max_size} bytes, over the limit of {MAX_SIZE_SETTING}"

    # -- reading results: what the storage returns is input too ------------------

    def _get_task_meta_for(self, task_id: str) -> dict[str, Any]:
        payload = self._read(self.get_key_for_task(task_id), ("task", bytes_to_str(task_id)))
        if not payload:
            return {"status": states.PENDING, "result": None}
        return self._task_meta(bytes_to_str(task_id), payload)

    def _mget_to_results(
        self, values: Sequence[bytes | None], keys: Sequence[Any], READY_STATES: Any = states.READY_STATES
    ) -> dict[str, dict[str, Any]]:
        found = {}
        for task_id, payload in zip(keys, values, strict=True):
            if payload:
                meta = self._task_meta(bytes_to_str(task_id), payload)
                if meta["status"] in READY_STATES:
                    found[bytes_to_str(task_id)] = meta
        return found

    def _task_meta(self, task_id: str, payload: bytes) -> dict[str, Any]:
        """The decoded result of task_id, or InvalidStoredResult naming it (never the payload)."""
        try:
            meta = self.decode(payload)
        except StoredObjectTooLarge:
            raise self._not_a_result("task", task_id, self.expands_past_limit()) from None
        except Exception as exc:
            raise self._not_a_result("task", task_id, f"it does not decode ({type(exc).__name__})") from None
        problem = _result_problem(meta, task_id)
        if problem:
            raise self._not_a_result("task", task_id, problem)
        try:
            return self.meta_from_decoded(meta)
        except Exception as exc:
            problem = f"its exception cannot be restored ({type(exc).__name__})"
            raise self._not_a_result("task", task_id, problem) from None

    def _restore_group(self, group_id: str) -> dict[str, Any] | None:
        payload = self._read(self.get_key_for_group(group_id), ("group", group_id))
        if not payload:
            return None
        try:
            meta = self.decode(payload)
            meta["result"] = result_from_tuple(meta["result"], self.app)
        except StoredObjectTooLarge:
            raise self._not_a_result("group", group_id, self.expands_past_limit()) from None
        except Exception as exc:
            problem = f"it is not a saved group ({type(exc).__name__})"
            raise self._not_a_result("group", group_id, problem) from None
        return meta

    def _not_a_result(self, kind: str, ident: str, problem: str) -> InvalidStoredResult:
        name = self.layout.name(self.group_keyprefix if kind == "group" else self.task_keyprefix, ident)
        return InvalidStoredResult(
            f"The object stored for {kind} {ident!r} ({name} in {self.adapter.describe()}) "
            f"is not a Celery result: {problem}",
            ident,
        )

    def _stored_status(self, task_id: str, stored: StoredObject | None) -> str | None:
        """The state stored for the task; None for nothing, or for an object that is not its result."""
        task_id = bytes_to_str(task_id)
        try:
            payload = self._payload(self.get_key_for_task(task_id), stored)
            return None if payload is None else str(self._task_meta(task_id, payload)["status"])
        except InvalidStoredResult:
            return None  # not a result: the task's own write replaces it

    # -- storing results ---------------------------------------------------------

    def _store_result(
        self, task_id: str, result: Any, state: str, traceback: Any = None, request: Any = None, **kwargs: Any
    ) -> Any:
        meta = self._get_result_meta(result=result, state=state, traceback=traceback, request=request)
        meta["task_id"] = bytes_to_str(task_id)
        name = self.get_key_for_task(task_id)
        payload, size = self._encode_measured(meta)
        if size > self.max_size and state in states.EXCEPTION_STATES:
            # a failure is stored whatever its size: its exception and traceback give way
            error = self._too_large("task", meta["task_id"], size, _exception_name(result))
            meta = self._get_result_meta(
                result=self.encode_result(error, state), state=state, traceback=None, request=request
            )
            meta["task_id"] = bytes_to_str(task_id)
            payload, size = self._encode_measured(meta)
        self._refuse_oversized("task", meta["task_id"], size)
        if self.adapter.conditional_writes:
            written = self._store_conditionally(task_id, name, payload, final=state == states.SUCCESS)
            # a final state, for on_chord_part_return, which Celery calls next in this thread
            carried = written and state in states.READY_STATES and len(payload) <= self.inline_limit
            self._local.stored = (task_id, payload if carried else None)
        else:
            # Celery's rule, with one read: a late duplicate never overwrites SUCCESS.
            try:
                status = self._stored_status(task_id, self.adapter.read(name))
            except StoredObjectTooLarge:
                status = None  # not a result: the task's own write replaces it
            if status != states.SUCCESS:
                self.set(name, payload)
        return result

    def _store_conditionally(self, task_id: str, name: str, payload: bytes, final: bool) -> bool:
        """Write unless SUCCESS is stored, atomically, usually in one request;
        True when payload is what is stored now, False when SUCCESS stayed.

        The version of a result this process wrote last lets its next state
        go straight to a version-matched write; a SUCCESS version is not
        kept, so a later duplicate always re-reads and leaves SUCCESS alone.
        """
        adapter = self.adapter
        known = self._known_version(name)
        mode: PutMode = Update(known) if known else CREATE
        for _ in range(MAX_WRITE_ROUNDS):
            try:
                version = self._put(name, payload, mode)
                self._remember(name, None if final else version)
                return True
            except VersionMismatch:
                pass
            try:
                current = adapter.read(name)
            except StoredObjectTooLarge as exc:  # not a result: the task's own write replaces it
                if exc.version is None:
                    raise RuntimeError(f"{adapter!r} returned no version for {name!r}") from None
                mode = Update(exc.version)
                continue
            if current is None:
                mode = CREATE
                continue
            if self._stored_status(task_id, current) == states.SUCCESS:
                self._remember(name, None)
                return False
            if current.version is None:
                raise RuntimeError(f"{adapter!r} returned no version for {name!r}")
            mode = Update(current.version)
        raise VersionMismatch(f"result {name!r} kept changing under {MAX_WRITE_ROUNDS} conditional writes")

    def task_result_exists(self, task_id: str) -> bool:
        """Whether a result is stored for the task (one read), on every Celery version."""
        try:
            return self.adapter.read(self.get_key_for_task(task_id)) is not None
        except StoredObjectTooLarge:
            return True

    # -- chords ------------------------------------------------------------------

    @property
    def native_chords(self) -> bool:
        """Chords count their header tasks in storage, without chord_unlock polling."""
        return self.adapter.conditional_writes

    def apply_chord(self, header_result_args: Any, body: Any, **kwargs: Any) -> Any:
        if not self.native_chords:
            return super().apply_chord(header_result_args, body, **kwargs)  # celery.chord_unlock
        self.ensure_chords_allowed()
        header_result = self.app.GroupResult(*header_result_args)
        header_result.save(backend=self)
        # a group in the header: Celery corrects the size and positions collide
        flat = not any(isinstance(result, ResultSet) for result in header_result.results)
        self.chord_counter.start(header_result.id, len(header_result.results), flat)
        if flat and isinstance(body, dict):
            # Celery sends the header after this, each task with the callback
            # as request.chord: it tells the finishers how many places there are
            body[POSITIONS_KEY] = len(header_result.results)
        return None

    def set_chord_size(self, group_id: str, chord_size: int) -> None:
        if self.native_chords:
            self.chord_counter.set_size(group_id, chord_size)

    def on_chord_part_return(self, request: Any, state: str, result: Any, **kwargs: Any) -> None:
        group_id = getattr(request, "group", None)
        if not self.native_chords or not group_id:
            return
        callback = maybe_signature(request.chord, app=self.app)
        stored, self._local.stored = getattr(self._local, "stored", None), None
        finished = Finished(
            request.id,
            position=getattr(request, "group_index", None),
            positions=request.chord.get(POSITIONS_KEY) if isinstance(request.chord, dict) else None,
            # what this task's own write stored, if small: a counter that keeps
            # it saves the chord's join a read
            payload=stored[1] if stored and stored[0] == request.id else None,
        )
        try:
            completed = self.chord_counter.record(group_id, finished)
        except Exception as exc:  # not transient (those are retried): fail it, do not hang
            logger.exception("Chord %s: cannot record header task %s", group_id, request.id)
            self.chord_error_from_stack(callback, ChordError(f"cannot record a header task: {exc!r}"))
            return
        if completed:
            self._fire_chord(group_id, callback, request.id)

    def _fire_chord(self, group_id: str, callback: Any, elected: str | None = None) -> None:
        """Join the header results (parallel reads in batches) and send the callback."""
        header = self.with_retries(self.restore_group, group_id, cache=False)
        if header is None:
            # The group record goes before the markers: a finisher elected
            # after another fired the chord and cleaned up finds no group.
            logger.info(
                "Chord %s was fired and removed already: header task %s does nothing", group_id, elected
            )
            self.chord_counter.fired_by(group_id, elected or "")
            return
        try:
            try:
                ahead = self._read_snapshots(group_id, len(header.results))
                with allow_join_result(), self._retrying_reads(ahead):
                    values = header.join_native(
                        timeout=self.app.conf.result_chord_join_timeout, propagate=True
                    )
            except Exception as exc:
                culprit = next((r for r in header.results if r.state in states.PROPAGATE_STATES), None)
                reason = f"Dependency {culprit.id} raised {exc!r}" if culprit else repr(exc)
                raise ChordError(reason) from exc
            callback.delay(values)
        except ChordError as exc:  # a header task failed: the callback's errbacks run
            logger.error("Chord %s failed: %s", group_id, exc)
            self.chord_error_from_stack(callback, exc)
        except Exception as exc:
            logger.exception("Chord %s: the callback could not be sent", group_id)
            self.chord_error_from_stack(callback, ChordError(f"Callback error: {exc!r}"))
        finally:
            self.with_retries(self.delete, self.get_key_for_group(group_id))  # first: see above
            self.chord_counter.forget(group_id)

    def with_retries(self, call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """call(), with transient errors retried by Celery's backoff settings
        (chord bookkeeping uses it whatever result_backend_always_retry says:
        a failed chord is permanent). A VersionMismatch is an answer, not an
        error: it is raised at once."""
        retries = 0
        while True:
            try:
                return call(*args, **kwargs)
            except VersionMismatch:
                raise
            except Exception as exc:
                if retries >= self.max_retries or not self.exception_safe_to_retry(exc):
                    raise
                retries += 1
                logger.warning(
                    "Storage call %s failed (%s), retry %d",
                    _call_name(call),
                    type(exc).__name__,
                    retries,
                )
                time.sleep(
                    get_exponential_backoff_interval(
                        self.base_sleep_between_retries_ms, retries, self.max_sleep_between_retries_ms, True
                    )
                    / 1000
                )

    @contextlib.contextmanager
    def _retrying_reads(self, ahead: dict[str, bytes] | None = None) -> Iterator[None]:
        """Within: mget() retries transient errors (the chord's own join) and
        takes what ahead holds (result name -> stored bytes) instead of reading it."""
        before = getattr(self._local, "retry_reads", False), getattr(self._local, "read_ahead", None)
        self._local.retry_reads, self._local.read_ahead = True, ahead
        try:
            yield
        finally:
            self._local.retry_reads, self._local.read_ahead = before

    # -- failing canvases: as on Celery's Redis backend (see canvas.py) ---------

    def wait_for(
        self,
        task_id: str,
        timeout: float | None = None,
        interval: float = 0.5,
        no_ack: bool = True,
        on_interval: Any = None,
    ) -> Any:
        meta = super().wait_for(
            task_id, timeout=timeout, interval=interval, no_ack=no_ack, on_interval=on_interval
        )
        if on_interval is not None:
            # AsyncResult.get() checks the result's parents on each interval;
            # Redis's drainer checks them once more after the result arrived,
            # so a failed parent's own error surfaces first: do the same.
            on_interval()
        return meta

    def is_cached(self, task_id: str) -> bool:
        """Whether the task's result is at hand without waiting for it: a stored
        result is read on demand, so always (with Celery's result cache off, its
        default, Celery's chord_unlock would name no failed header task)."""
        return True

    def mark_as_failure(
        self,
        task_id: str,
        exc: BaseException,
        traceback: Any = None,
        request: Any = None,
        store_result: bool = True,
        call_errbacks: bool = True,
        state: str = states.FAILURE,
    ) -> None:
        """Celery's order (the result, the chord part, the tasks after it, the
        errbacks), with the failure reaching every task that can no longer run."""
        if store_result:
            self.store_result(task_id, exc, state, traceback=traceback, request=request)
        if request is None:
            return
        if request.chord:
            self.on_chord_part_return(request, state, exc)
        self._fail_chain(
            getattr(request, "chain", None), exc, traceback, store_result=store_result, state=state
        )
        if call_errbacks and request.errbacks:
            self._call_task_errbacks(request, exc, traceback)

    def _fail_chain(
        self,
        chain: Any,
        exc: BaseException,
        traceback: Any = None,
        store_result: bool = True,
        state: str = states.FAILURE,
    ) -> None:
        """Fail every task of the chain after a failed task, inside groups, chains and chords too."""
        for task in canvas.unreachable(chain, self.app):
            if store_result and state in states.PROPAGATE_STATES:
                self.store_result(task.request.id, exc, state, traceback=traceback, request=task.request)
            if task.chord_part:
                self.on_chord_part_return(task.request, state, exc)

    def chord_error_from_stack(self, callback: Any, exc: BaseException | None = None) -> Any:
        """Celery fails the callback's result; the other tasks of a chain (or
        chord) callback can no longer run either, and a callback inside an
        outer chord's header is that chord's part: fail them, count it."""
        exc = sys.exc_info()[1] if exc is None else exc
        info = super().chord_error_from_stack(callback, exc)
        callback = maybe_signature(callback, app=self.app)
        if isinstance(callback, group):  # Celery fails each task of a group callback itself
            return info
        for task in canvas.unreachable([callback], self.app):
            if task.request.id != callback.id:
                self.store_result(task.request.id, exc, states.FAILURE, request=task.request)
            if task.chord_part:
                self.on_chord_part_return(task.request, states.FAILURE, exc)
        return info

    # -- retries and expiry ------------------------------------------------------

    def exception_safe_to_retry(self, exc: BaseException) -> bool:
        if isinstance(exc, VersionMismatch):
            return True
        # a StorageError is the storage's own error, redacted: judge it by its class
        cause = exc.cause_type if isinstance(exc, StorageError) else type(exc)
        if self.safe_to_retry and issubclass(cause, self.safe_to_retry):
            return True
        return self.adapter.is_retryable(exc)

    def cleanup(self) -> CleanupReport:
        """Delete expired results, chord bookkeeping and debris of interrupted
        writes (see expiry.py); never raises, returns what it did."""
        return expiry.cleanup(self)

    def as_uri(self, include_password: bool = False) -> str:
        return "django-storage://"


class BookkeepingStore:
    """The backend as chords.ChordStore: its named-object calls, transient errors retried."""

    def __init__(self, backend: StorageBackend) -> None:
        self.backend = backend

    def read_decoded(self, name: str) -> DecodedObject | None:
        return self.backend.with_retries(self.backend.read_decoded, name)

    def write_encoded(self, name: str, value: Any, mode: PutMode = OVERWRITE) -> str | None:
        return self.backend.with_retries(self.backend.write_encoded, name, value, mode)

    def list_names(self, prefix: str) -> list[str]:
        return self.backend.with_retries(self.backend.list_names, prefix)

    def delete_names(self, names: Iterable[str]) -> None:
        names = list(names)
        self.backend.with_retries(self.backend.delete_names, names)

    def create_appendable(self, name: str) -> None:
        self.backend.with_retries(self.backend.create_appendable, name)

    def append_line(self, name: str, line: str) -> int | None:
        return self.backend.with_retries(self.backend.append_line, name, line)

    def read_lines(self, name: str) -> list[str] | None:
        return self.backend.with_retries(self.backend.read_lines, name)

    def seal(self, name: str) -> None:
        self.backend.with_retries(self.backend.seal, name)

    def snapshot(self, name: str, task_ids: Iterable[str]) -> None:
        self.backend.snapshot(name, task_ids)  # retries inside, and never raises

    def each(self, call: Callable[[str], object], names: Iterable[str]) -> None:
        self.backend.each(call, names)  # call goes through this store: retried


def _call_name(call: Callable[..., Any]) -> str:
    return getattr(call, "__name__", type(call).__name__)


_live_backends: weakref.WeakSet[StorageBackend] = weakref.WeakSet()


def _reset_after_fork() -> None:
    for backend in list(_live_backends):
        backend._reset_process_resources()


if hasattr(os, "register_at_fork"):  # every platform that can fork
    # Clients and threads do not survive a fork, and a lock held by another
    # thread at fork time would deadlock the child: start the child afresh.
    os.register_at_fork(after_in_child=_reset_after_fork)


def _result_problem(meta: Any, task_id: str) -> str | None:
    """Why a decoded object is not the stored result of task_id, or None when it is."""
    if not isinstance(meta, dict):
        return f"it holds a {type(meta).__name__}, not a result"
    status = meta.get("status")
    if not isinstance(status, str) or not status:
        return "it has no status"
    if "result" not in meta:
        return "it has no result field"
    if bytes_to_str(meta.get("task_id") or "") != task_id:
        return "it is not stored for this task id"
    return None


def _exception_name(prepared: Any) -> str:
    """The type of an exception as Celery prepared it for storing, to name it in a message."""
    name = prepared.get("exc_type") if isinstance(prepared, dict) else type(prepared).__name__
    return f"{name} " if isinstance(name, str) and name.isidentifier() else ""


def _stored_bytes(stored: StoredObject) -> bytes:
    return codec.unlabel(stored.data, stored.content_encoding)


def _as_bytes(value: bytes | str) -> bytes:
    return value.encode("utf-8") if isinstance(value, str) else bytes(value)
