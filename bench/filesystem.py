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

import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.harness import (
    JOIN,
    PAYLOAD,
    CallCounter,
    Measurement,
    arguments,
    backend_operations,
    celery_app,
    compare,
    fs_calls,
    group_joins,
    measure,
    report,
)


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


def measure_backend(target: str, backend, count: int, counter: CallCounter | None) -> list[Measurement]:
    runs = backend_operations(backend, count)
    return [measure(target, operation, run, count, counter) for operation, run in runs.items()]


def read_file(path: Path) -> None:
    with open(path, "rb") as handle:
        handle.read()


def main() -> None:
    args = arguments(__doc__, count=500)
    work = Path(tempfile.mkdtemp(prefix="bench-fs-"))
    ours = celery_app(
        "ours", result_storage="filesystem", result_storage_config={"location": str(work / "ours")}
    )
    generic = celery_app(
        "generic",
        result_storage="filesystem",
        result_storage_adapter="generic",
        result_storage_config={"location": str(work / "generic")},
    )
    (work / "celery").mkdir()
    celery_file = celery_app("celery", result_backend=f"file://{work / 'celery'}")
    encoded = ours.backend.encode({"status": "SUCCESS", "result": PAYLOAD})

    measurements = raw_operations(work / "raw", encoded, args.count)
    measurements += measure_backend("ours", ours.backend, args.count, fs_calls)
    measurements += measure_backend("ours-generic", generic.backend, args.count, fs_calls)
    # Celery's file backend binds open() at import time, so its calls cannot be counted.
    measurements += measure_backend("celery-file", celery_file.backend, args.count, None)
    joins = group_joins(
        {"ours": ours},
        lambda task_id: (work / "raw" / f"g-{task_id}").write_bytes(encoded),
        lambda task_id: read_file(work / "raw" / f"g-{task_id}"),
    )
    measurements += compare(JOIN, joins, max(5, args.count // 25), fs_calls)

    print(f"1 KiB results; best of 3 runs of {args.count} operations; {os.cpu_count()} CPUs; {work}")
    print(report(measurements, baseline="raw"))


if __name__ == "__main__":
    main()
