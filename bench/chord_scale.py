"""Benchmark: what one chord's bookkeeping costs per header task as N grows.

    hatch run bench:chord-scale [--sizes 10,1000,10000] [--storages folder,memory,s3,gcs,azure]
                                [--memory-sizes 10,1000,10000,100000] [--folder-sizes 10,1000,10000]
                                [--threads 4] [--processes 4]

No worker: the chord's methods are driven as a worker drives them:
apply_chord and set_chord_size, then for each header task mark_as_done with
a request carrying its group id, the callback and its position
(group_index), as a header task's does. The callback is published to an
in-memory broker. Each run is the whole chord: the apply, the header tasks'
results and bookkeeping, the fire (the join of the N results), the clean-up.

On the emulators (S3 on moto, GCS on fake-gcs-server, Azure on Azurite), from
--threads threads (each with the backend Celery gives a thread), the
requests go through the counting proxy.

"memory" is an in-memory store served by one process to --processes
processes (bench/shared_store.py), each finishing a share of the header's
positions in a random order; it counts requests the way the proxy counts
S3's (a listing is one request per page of 1,000 names, a bulk delete one
per 1,000 names), for sizes the emulators cannot list quickly (they scan
the bucket to list). It asserts the callback was sent exactly once, with
all N values, after all N header results were stored.

On the folder (the filesystem provider), the file system calls naming a
path in the results folder are counted instead, with the most header ids one
write of chord state held.

Printed per storage and N: store requests per header task, by kind (PUT,
GET, LIST, DELETE), the final join's reads of the N header results left out
(listed apart); the bytes of names listed per header task; requests of the
apply (group record, markers); and seconds per header task.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import sys
import tempfile
import threading
import time
import traceback
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from celery import Celery
from celery.app.task import Context

from bench.harness import setup_django
from bench.shared_store import JOIN, CountingStore, backends_on, shared_store
from django_storage_celery_results.backends import StorageBackend
from support.fscalls import touching
from support.proxy import CountingProxy, Request
from support.stores.azure import AzureStore
from support.stores.gcs import GCSStore
from support.stores.s3 import S3Store

STORES = {"s3": S3Store, "gcs": GCSStore, "azure": AzureStore}
KINDS = ("PUT", "GET", "LIST", "DELETE")


# -- counting ------------------------------------------------------------------------


def kind_of(request: Request) -> str:
    """PUT, GET, LIST or DELETE, whatever the store's wire says."""
    query = request.query
    if request.method == "GET" and (
        "list-type" in query or "comp=list" in query or query.startswith("prefix")
    ):
        return "LIST"
    if request.method == "GET" and request.path.rstrip("/").endswith("/o"):
        return "LIST"  # GCS: GET /storage/v1/b/<bucket>/o
    if request.method == "DELETE" or "delete" in query or "batch" in request.path or "comp=batch" in query:
        return "DELETE"
    if request.method in ("PUT", "POST"):
        return "PUT"
    return request.method


def is_join_read(request: Request, header_ids: set[str]) -> bool:
    if request.method != "GET":
        return False
    path = unquote(request.path)
    marker = "celery-task-meta-"
    return marker in path and path.rsplit(marker, 1)[1].split("?")[0] in header_ids


@dataclass
class Row:
    storage: str
    size: int
    code: str
    #: The header tasks' requests by kind (their results, bookkeeping, the fire
    #: and the clean-up), the final join's reads left out.
    requests: Counter[str] = field(default_factory=Counter)
    join_reads: int = 0
    apply_requests: int = 0
    listed_names: float = 0.0
    listed_bytes: float = 0.0
    seconds: float = 0.0
    fired: int = 0

    def line(self) -> str:
        total = sum(self.requests.values()) / self.size
        kinds = " | ".join(f"{self.requests[kind] / self.size:6.3f}" for kind in KINDS)
        totals = " / ".join(str(self.requests[kind]) for kind in KINDS)
        return (
            f"| {self.storage:7} | {self.code:6} | {self.size:7d} | {total:7.3f} | {kinds} | "
            f"{self.listed_names:6.1f} | {self.listed_bytes:10.0f} | "
            f"{self.apply_requests:5d} | {self.join_reads:6d} | "
            f"{totals} | {self.seconds * 1000:8.2f} | {self.fired} |"
        )


HEADER = (
    "| storage | code   |       N | req/task |    PUT |    GET |   LIST | DELETE "
    "| names listed/task | listed B/task | apply | join GETs "
    "| requests PUT / GET / LIST / DELETE | ms/task | fired |\n"
    "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|"
)


class Names:
    """Counts the names listed by the backend and their bytes (the emulator's own listing bytes are ~4x)."""

    def __init__(self) -> None:
        self.names = self.bytes = 0
        self.lock = threading.Lock()
        self.original = StorageBackend.list_names

    def __enter__(self) -> Names:
        names = self

        def list_names(backend: StorageBackend, prefix: str) -> list[str]:
            found = names.original(backend, prefix)
            with names.lock:
                names.names += len(found)
                names.bytes += sum(len(name) for name in found)
            return found

        StorageBackend.list_names = list_names  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        StorageBackend.list_names = self.original  # type: ignore[method-assign]


# -- one chord -----------------------------------------------------------------------


def make_app(conf: dict) -> Celery:
    app = Celery(f"bench-{uuid.uuid4().hex[:6]}", set_as_current=False)
    app.conf.update({"broker_url": "memory://", "result_backend": "django-storage", **conf})

    @app.task(name="bench.callback", shared=False)
    def callback(values):
        return len(values)

    return app


def apply_chord(app: Celery, size: int) -> tuple[str, Any, list[str]]:
    """Apply a chord of size header tasks as chord.run does: (group id, callback, task ids)."""
    group_id = str(uuid.uuid4())
    task_ids = [str(uuid.uuid4()) for _ in range(size)]
    callback = app.signature("bench.callback")
    callback.freeze()
    app.backend.apply_chord((group_id, [app.AsyncResult(task_id) for task_id in task_ids]), callback)
    app.backend.set_chord_size(group_id, size)
    return group_id, callback, task_ids


class Progress:
    """Prints to stderr how many of the header tasks are done, every tenth."""

    def __init__(self, label: str, total: int) -> None:
        self.label, self.total, self.done = label, total, 0
        self.started = time.perf_counter()
        self.lock = threading.Lock()

    def step(self) -> None:
        with self.lock:
            self.done += 1
            if self.done % max(1, self.total // 10) == 0:
                elapsed = time.perf_counter() - self.started
                print(f"  {self.label}: {self.done}/{self.total} in {elapsed:.0f} s", file=sys.stderr)


def finish_header_tasks(
    app: Celery,
    group_id: str,
    callback: Any,
    task_ids: list[str],
    positions: list[int],
    progress: Progress,
) -> None:
    """What a worker does when these header tasks succeed: mark_as_done with the
    request a header task carries (its group, the callback, its position)."""
    backend = app.backend
    chord = dict(callback)
    for position in positions:
        request = Context(
            id=task_ids[position], group=group_id, chord=chord, group_index=position, delivery_info={}
        )
        backend.mark_as_done(task_ids[position], position, request=request)
        progress.step()


def finish_all(
    app: Celery, group_id: str, callback: Any, task_ids: list[str], threads: int
) -> tuple[float, int]:
    fired = Counter[str]()
    lock = threading.Lock()
    original = StorageBackend._fire_chord

    def counted_fire(backend, *args, **kwargs):
        with lock:
            fired["n"] += 1
        return original(backend, *args, **kwargs)

    StorageBackend._fire_chord = counted_fire  # type: ignore[method-assign]
    errors: list[BaseException] = []
    progress = Progress(f"N = {len(task_ids)}", len(task_ids))

    def work(share: list[int]) -> None:
        try:
            finish_header_tasks(app, group_id, callback, task_ids, share, progress)
        except BaseException as exc:
            errors.append(exc)

    started = time.perf_counter()
    workers = [
        threading.Thread(target=work, args=(list(range(i, len(task_ids), threads)),)) for i in range(threads)
    ]
    try:
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
    finally:
        StorageBackend._fire_chord = original  # type: ignore[method-assign]
    if errors:
        raise errors[0]
    return time.perf_counter() - started, fired["n"]


def on_emulator(storage: str, sizes: list[int], threads: int, code: str) -> Iterator[Row]:
    store_class = STORES[storage]
    emulator = store_class.start()
    env = _Env()
    try:
        for size in sizes:
            store = store_class(emulator, env)  # a fresh bucket
            proxy: CountingProxy = emulator.proxy
            app = make_app({"result_storage": store.preset, "result_storage_config": store.config})
            with proxy.counting() as applied:
                group_id, callback, task_ids = apply_chord(app, size)
            header_ids = set(task_ids)
            with Names() as names, proxy.counting() as seen:
                seconds, fired = finish_all(app, group_id, callback, task_ids, threads)
            row = Row(storage, size, code, apply_requests=len(applied), seconds=seconds / size, fired=fired)
            for request in list(seen):
                if is_join_read(request, header_ids):
                    row.join_reads += 1
                else:
                    row.requests[kind_of(request)] += 1
            row.listed_names = names.names / size
            row.listed_bytes = names.bytes / size
            yield row
    finally:
        env.undo()
        emulator.stop()


# -- several processes on a shared in-memory store -----------------------------------


@dataclass
class Chord:
    """An applied chord, as each process driving its header needs it."""

    conf: dict[str, Any]
    group_id: str
    callback: Any
    task_ids: list[str]


@dataclass
class Sent:
    """One callback sent: with how many values, and how many header results
    were stored at that moment."""

    values: int
    stored: int


def drive_share(store: CountingStore, chord: Chord, positions: list[int], out: Any) -> None:
    """In a process of its own: finish these header tasks; put the callbacks this
    process sent (or the error that stopped it) on out."""
    try:
        with backends_on(store):
            app = make_app(chord.conf)
            header = [app.backend.get_key_for_task(task_id) for task_id in chord.task_ids]
            sent: list[Sent] = []
            send_task = app.send_task

            def watched_send_task(name: str, args: Any = None, *more: Any, **kwargs: Any) -> Any:
                if name == "bench.callback":
                    sent.append(Sent(values=len(args[0]), stored=store.present(header)))
                return send_task(name, args, *more, **kwargs)

            app.send_task = watched_send_task  # type: ignore[method-assign]
            progress = Progress(f"N = {len(chord.task_ids)}, one process", len(positions))
            finish_header_tasks(app, chord.group_id, chord.callback, chord.task_ids, positions, progress)
        out.put(sent)
    except BaseException:
        out.put(traceback.format_exc())


def finish_in_processes(store: CountingStore, chord: Chord, processes: int) -> tuple[float, list[Sent]]:
    """Every header task finished once, by processes each taking a share of the
    positions in a random order: (seconds, the callbacks sent)."""
    positions = list(range(len(chord.task_ids)))
    random.shuffle(positions)
    context = multiprocessing.get_context("fork")  # the store's proxy and this module's state go along
    out = context.Queue()
    started = time.perf_counter()
    workers = [
        context.Process(target=drive_share, args=(store, chord, positions[i::processes], out))
        for i in range(processes)
    ]
    for worker in workers:
        worker.start()
    answers = [out.get() for _ in workers]
    for worker in workers:
        worker.join()
    seconds = time.perf_counter() - started
    failures = [answer for answer in answers if isinstance(answer, str)]
    if failures:
        raise RuntimeError(f"a process driving header tasks failed:\n{failures[0]}")
    return seconds, [sent for answer in answers for sent in answer]


def check_fired_once(sent: list[Sent], size: int, store: CountingStore, callback_result: str) -> None:
    """The promise: one callback, sent after all size header results were stored,
    with all of them, and no chord error stored for it."""
    assert len(sent) == 1, f"the callback was sent {len(sent)} times"
    assert sent[0].stored == size, f"the callback was sent with {sent[0].stored} of {size} results stored"
    assert sent[0].values == size, f"the callback got {sent[0].values} values of {size}"
    assert not store.present([callback_result]), "a chord error was stored for the callback"


def in_memory(sizes: list[int], processes: int, code: str) -> Iterator[Row]:
    with shared_store() as store, tempfile.TemporaryDirectory() as folder, backends_on(store):
        conf = {"result_storage": "filesystem", "result_storage_config": {"location": folder}}
        app = make_app(conf)
        for size in sizes:
            store.reset()
            group_id, callback, task_ids = apply_chord(app, size)
            applied, _, _ = store.take_counts()
            store.set_join([app.backend.get_key_for_task(task_id) for task_id in task_ids])
            chord = Chord(conf, group_id, callback, task_ids)
            seconds, sent = finish_in_processes(store, chord, processes)
            check_fired_once(sent, size, store, app.backend.get_key_for_task(callback.id))
            counts, listed_names, listed_bytes = store.take_counts()
            row = Row("memory", size, code, apply_requests=sum(applied.values()), fired=len(sent))
            row.join_reads = counts.pop(JOIN, 0)
            row.requests = Counter(counts)
            row.listed_names = listed_names / size
            row.listed_bytes = listed_bytes / size
            row.seconds = seconds / size
            yield row


def on_folder(sizes: list[int], threads: int, code: str) -> Iterator[str]:
    """File system calls per header task (results folder paths, result writes included)
    and the most header ids one chord-state write held."""
    largest = [0]
    original = StorageBackend.write_encoded

    def write_encoded(backend: StorageBackend, name: str, value: Any, *args: Any, **kwargs: Any) -> Any:
        if name.startswith(backend.chord_keyprefix) and isinstance(value, dict):
            largest[0] = max(largest[0], len(value.get("done") or ()))
        return original(backend, name, value, *args, **kwargs)

    StorageBackend.write_encoded = write_encoded  # type: ignore[method-assign]
    try:
        for size in sizes:
            with tempfile.TemporaryDirectory() as folder:
                app = make_app(
                    {"result_storage": "filesystem", "result_storage_config": {"location": folder}}
                )
                group_id, callback, task_ids = apply_chord(app, size)
                largest[0] = 0
                with touching(folder) as touched:
                    seconds, fired = finish_all(app, group_id, callback, task_ids, threads)
                yield (
                    f"| folder | {code} | {size} | {touched.calls / size:.2f} | {largest[0]} | "
                    f"{seconds / size * 1000:.2f} | {fired} |"
                )
    finally:
        StorageBackend.write_encoded = original  # type: ignore[method-assign]


FOLDER_HEADER = (
    "| storage | code | N | fs calls/task (join included) | most ids in one state write | ms/task | fired |\n"
    "|---|---|---:|---:|---:|---:|---:|"
)


class _Env:
    """What StoreUnderTest wants of pytest's monkeypatch: setenv, undone at the end."""

    def __init__(self) -> None:
        self.saved: dict[str, str | None] = {}

    def setenv(self, name: str, value: str) -> None:
        self.saved.setdefault(name, os.environ.get(name))
        os.environ[name] = value

    def undo(self) -> None:
        for name, value in self.saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="10,1000,10000", help="N on the emulators")
    parser.add_argument("--memory-sizes", default="10,1000,10000,100000", help="N on the in-memory store")
    parser.add_argument("--folder-sizes", default="10,1000,10000", help="N on the folder")
    parser.add_argument("--storages", default="folder,memory,s3,gcs,azure")
    parser.add_argument("--threads", type=int, default=4, help="threads finishing header tasks (not memory)")
    parser.add_argument("--processes", type=int, default=4, help="processes finishing header tasks (memory)")
    parser.add_argument("--code", default="after", help="a label for the code measured (before/after)")
    args = parser.parse_args()
    setup_django()
    storages = args.storages.split(",")
    if "folder" in storages:
        print(FOLDER_HEADER, flush=True)
        for line in on_folder([int(n) for n in args.folder_sizes.split(",") if n], args.threads, args.code):
            print(line, flush=True)
        storages.remove("folder")
    print(HEADER, flush=True)
    for storage in storages:
        if storage == "memory":
            rows = in_memory([int(n) for n in args.memory_sizes.split(",") if n], args.processes, args.code)
        else:
            rows = on_emulator(storage, [int(n) for n in args.sizes.split(",") if n], args.threads, args.code)
        for row in rows:
            print(row.line(), flush=True)


if __name__ == "__main__":
    main()
