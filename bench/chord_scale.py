"""Benchmark: what one chord's bookkeeping costs per header task as N grows.

    hatch run bench:chord-scale [--sizes 10,1000,10000] [--storages s3,gcs,azure,memory]
                                [--memory-sizes 10,1000,10000,100000] [--threads 4]

No worker: the chord's methods are driven as a worker drives them, from
--threads threads (each with the backend Celery gives a thread): apply_chord
and set_chord_size, then for each header task mark_as_done with a request
carrying its group id, the callback and its position (group_index), as a
header task's does. The callback is published to an in-memory broker.

On the emulators (S3 on moto, GCS on fake-gcs-server, Azure on Azurite), the
requests go through the counting proxy; "memory" is an in-memory store in
this process that counts requests the way the proxy counts S3's (a listing
is one request per page of 1,000 names, a bulk delete one per 1,000 names),
for sizes the emulators cannot list quickly (they scan to list).

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
import bisect
import datetime
import itertools
import os
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from celery import Celery
from celery.app.task import Context

from bench.harness import setup_django
from django_storage_celery_results import adapters
from django_storage_celery_results.backends import StorageBackend
from django_storage_celery_results.exceptions import VersionMismatch
from support.fscalls import touching
from support.proxy import CountingProxy, Request
from support.stores.azure import AzureStore
from support.stores.gcs import GCSStore
from support.stores.s3 import S3Store

STORES = {"s3": S3Store, "gcs": GCSStore, "azure": AzureStore}
KINDS = ("PUT", "GET", "LIST", "DELETE")
PAGE = 1000


# -- an in-memory store counted like S3 ------------------------------------------------


class MemoryStore(adapters.StorageAdapter):
    """Objects in a dict, requests counted as S3 would bill them."""

    conditional_writes = True
    prefix_listing = True

    def __init__(self) -> None:
        self.objects: dict[str, tuple[bytes, str]] = {}
        #: The names in order, for listings by prefix without a scan.
        self.names: list[str] = []
        self.lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        self.listed_bytes = 0

    def describe(self) -> str:
        return "memory"

    def read(self, name: str) -> adapters.StoredObject | None:
        with self.lock:
            self.counts["GET"] += 1
            found = self.objects.get(name)
        return adapters.StoredObject(*found) if found else None

    def put(self, name, data, mode=adapters.OVERWRITE, content=adapters.Content()):
        with self.lock:
            self.counts["PUT"] += 1
            current = self.objects.get(name)
            if mode == adapters.CREATE and current is not None:
                raise VersionMismatch(name)
            if isinstance(mode, adapters.Update) and (current is None or current[1] != mode.version):
                raise VersionMismatch(name)
            version = uuid.uuid4().hex
            if current is None:
                bisect.insort(self.names, name)
            self.objects[name] = (bytes(data), version)
        return version

    def delete(self, name: str) -> None:
        with self.lock:
            self.counts["DELETE"] += 1
            self._forget(name)

    def delete_many(self, names: Iterable[str]) -> None:
        names = list(names)
        with self.lock:
            self.counts["DELETE"] += -(-len(names) // PAGE)
            for name in names:
                self._forget(name)

    def _forget(self, name: str) -> None:
        if self.objects.pop(name, None) is not None:
            del self.names[bisect.bisect_left(self.names, name)]

    def list(self, wanted=lambda name: True, prefix=""):
        with self.lock:
            start = bisect.bisect_left(self.names, prefix)
            following = (self.names[index] for index in range(start, len(self.names)))
            found = list(itertools.takewhile(lambda name: name.startswith(prefix), following))
            self.counts["LIST"] += max(1, -(-len(found) // PAGE))
            self.listed_bytes += sum(len(name) for name in found)
        now = datetime.datetime.now(datetime.timezone.utc)
        return iter([adapters.ListedObject(name, now) for name in found if wanted(name)])


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
    per_task: Counter[str] = field(default_factory=Counter)
    join_reads: int = 0
    apply_requests: int = 0
    listed_bytes: float = 0.0
    seconds: float = 0.0
    fired: int = 0

    def line(self) -> str:
        total = sum(self.per_task.values())
        kinds = " | ".join(f"{self.per_task[kind]:6.3f}" for kind in KINDS)
        return (
            f"| {self.storage:7} | {self.code:6} | {self.size:7d} | {total:7.3f} | {kinds} | "
            f"{self.listed_bytes:10.0f} | {self.apply_requests:5d} | {self.join_reads:6d} | "
            f"{self.seconds * 1000:8.2f} | {self.fired} |"
        )


HEADER = (
    "| storage | code   |       N | req/task |    PUT |    GET |   LIST | DELETE "
    "| listed B/task | apply | join GETs | ms/task | fired |\n"
    "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
)


class Names:
    """Counts the bytes of the names listed by the backend (the emulator's own listing bytes are ~4x)."""

    def __init__(self) -> None:
        self.bytes = 0
        self.lock = threading.Lock()
        self.original = StorageBackend.list_names

    def __enter__(self) -> Names:
        names = self

        def list_names(backend: StorageBackend, prefix: str) -> list[str]:
            found = names.original(backend, prefix)
            with names.lock:
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

    def work(share: list[int]) -> None:
        try:
            backend = app.backend
            chord = dict(callback)
            for position in share:
                request = Context(
                    id=task_ids[position], group=group_id, chord=chord, group_index=position, delivery_info={}
                )
                backend.mark_as_done(task_ids[position], position, request=request)
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
                    row.per_task[kind_of(request)] += 1
            row.per_task = Counter({kind: count / size for kind, count in row.per_task.items()})
            row.listed_bytes = names.bytes / size
            yield row
    finally:
        env.undo()
        emulator.stop()


def in_memory(sizes: list[int], threads: int, code: str) -> Iterator[Row]:
    store = MemoryStore()
    original = StorageBackend.adapter
    StorageBackend.adapter = property(lambda self: store)  # type: ignore[assignment,method-assign]
    try:
        with tempfile.TemporaryDirectory() as folder:
            app = make_app({"result_storage": "filesystem", "result_storage_config": {"location": folder}})
            for size in sizes:
                store.objects.clear()
                store.names.clear()
                store.counts.clear()
                group_id, callback, task_ids = apply_chord(app, size)
                applied = sum(store.counts.values())
                store.counts.clear()
                store.listed_bytes = 0
                seconds, fired = finish_all(app, group_id, callback, task_ids, threads)
                row = Row("memory", size, code, apply_requests=applied, seconds=seconds / size, fired=fired)
                # the join reads one object per header task; the callback's own write is none here
                row.join_reads = size if fired else 0
                counts = Counter(store.counts)
                counts["GET"] -= row.join_reads
                row.per_task = Counter({kind: count / size for kind, count in counts.items()})
                row.listed_bytes = store.listed_bytes / size
                yield row
    finally:
        StorageBackend.adapter = original  # type: ignore[method-assign]


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
    parser.add_argument("--threads", type=int, default=4)
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
            rows = in_memory([int(n) for n in args.memory_sizes.split(",") if n], args.threads, args.code)
        else:
            rows = on_emulator(storage, [int(n) for n in args.sizes.split(",") if n], args.threads, args.code)
        for row in rows:
            print(row.line(), flush=True)


if __name__ == "__main__":
    main()
