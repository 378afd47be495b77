"""Benchmark: results in a local folder, 1 KiB each.

    hatch run bench:filesystem [--count N]

Targets, measured in one run on one machine:
  raw           open/write/close and open/read of a file: the baseline
  raw-durable   temp file + fsync + rename: what a crash-safe write costs
  ours          this backend with the filesystem provider
  ours-generic  this backend forced onto the generic adapter
  celery-file   Celery's own file:// backend (no fsync, not atomic)
plus a 100-result group join: ours vs 100 sequential raw reads.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import uuid
from pathlib import Path

import django
from django.conf import settings

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.harness import (
    PAYLOAD,
    CallCounter,
    Measurement,
    ObjectStoreTargets,
    backend_operations,
    fs_calls,
    measure,
    report,
)


def write_once_durably(path: Path, data: bytes) -> None:
    """A crash-safe, create-only write by hand: temp file, fsync, link into
    place (fails if the name exists), remove the temp name; what our folder
    adapter does for a new result, without the backend around it."""
    temp = path.with_name(f".tmp-{path.name}")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(temp, path)
    finally:
        os.unlink(temp)


def raw_operations(folder: Path, encoded: bytes, count: int) -> list[Measurement]:
    folder.mkdir()

    def write(i: int) -> None:
        with open(folder / f"r-{i}", "wb") as handle:
            handle.write(encoded)

    def write_durably(i: int) -> None:
        temp = folder / f".tmp-{i}"
        with open(temp, "wb") as handle:
            handle.write(encoded)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, folder / f"d-{i}")

    def read(i: int) -> None:
        with open(folder / f"r-{i % count}", "rb") as handle:
            handle.read()

    return [
        measure("raw", "store new result", write, count, fs_calls),
        measure("raw-durable", "store new result", write_durably, count, fs_calls),
        measure("raw", "read result", read, count, fs_calls),
        measure("raw", "STARTED then SUCCESS", lambda i: (write(i), write(i)), count, fs_calls),
        measure(
            "raw-durable",
            "STARTED then SUCCESS",
            lambda i: (write_durably(i), write_durably(i)),
            count,
            fs_calls,
        ),
    ]


def backend_measurements(name: str, backend, count: int, counter: CallCounter | None) -> list[Measurement]:
    runs = backend_operations(backend, count)
    return [measure(name, operation, run, count, counter) for operation, run in runs.items()]


def group_join(app, folder: Path, encoded: bytes, joins: int) -> list[Measurement]:
    from celery import states
    from celery.result import AsyncResult, ResultSet

    ids = [str(uuid.uuid4()) for _ in range(100)]
    for task_id in ids:
        app.backend.store_result(task_id, PAYLOAD, states.SUCCESS)
        (folder / f"g-{task_id}").write_bytes(encoded)

    def join_ours(_: int) -> None:
        app.backend._cache.clear()
        ResultSet([AsyncResult(task_id, app=app) for task_id in ids], app=app).join_native(timeout=10)

    def read_sequentially(_: int) -> None:
        for task_id in ids:
            with open(folder / f"g-{task_id}", "rb") as handle:
                handle.read()

    return [
        measure("raw", "group join of 100", read_sequentially, joins, fs_calls),
        measure("ours", "group join of 100", join_ours, joins, fs_calls),
    ]


def prepare(work: Path) -> ObjectStoreTargets:
    """Ours, Celery's file:// and the earlier package in folders of their own
    under work; the raw write and read are plain file calls in work/plain."""
    from celery import Celery

    ours = Celery("ours", set_as_current=False)
    ours.conf.update(
        result_backend="django-storage",
        result_storage="filesystem",
        result_storage_config={"location": str(work / "ours")},
    )
    (work / "celery").mkdir()
    celery_file = Celery("celery", set_as_current=False)
    celery_file.conf.update(result_backend=f"file://{work / 'celery'}")
    plain = work / "plain"

    def write(name: str, data: bytes) -> None:
        with open(plain / name, "wb") as handle:
            handle.write(data)

    def read(name: str) -> bytes:
        with open(plain / name, "rb") as handle:
            return handle.read()

    (plain / "raw").mkdir(parents=True)
    # The earlier package opens its files for writing without creating the folder.
    (work / "earlier").mkdir()
    return ObjectStoreTargets(
        ours,
        # Celery's file backend has no batch read.
        ("celery-file", celery_file, False),
        write,
        read,
        earlier=("django.core.files.storage.FileSystemStorage", {"location": str(work / "earlier")}),
        write_once=lambda name, data: write_once_durably(plain / name, data),
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=500, help="operations per timed run (default 500)")
    args = parser.parse_args()
    if not settings.configured:
        settings.configure(INSTALLED_APPS=["django_storage_celery_results"], USE_TZ=True)
    django.setup()
    from celery import Celery

    work = Path(tempfile.mkdtemp(prefix="bench-fs-"))
    targets = prepare(work)
    ours, celery_file = targets.ours, targets.celery[1]
    generic = Celery("generic", set_as_current=False)
    generic.conf.update(
        result_backend="django-storage",
        result_storage="filesystem",
        result_storage_adapter="generic",
        result_storage_config={"location": str(work / "generic")},
    )
    encoded = ours.backend.encode({"status": "SUCCESS", "result": PAYLOAD})

    measurements = raw_operations(work / "raw", encoded, args.count)
    measurements += backend_measurements("ours", ours.backend, args.count, fs_calls)
    measurements += backend_measurements("ours-generic", generic.backend, args.count, fs_calls)
    # Celery's file backend binds open() at import time, so its calls cannot be counted.
    measurements += backend_measurements("celery-file", celery_file.backend, args.count, None)
    measurements += group_join(ours, work / "raw", encoded, max(5, args.count // 25))

    print(f"1 KiB results; best of 3 runs of {args.count} operations; {os.cpu_count()} CPUs; {work}")
    print(report(measurements, baseline="raw"))


if __name__ == "__main__":
    main()
