"""Shared pieces of the benchmarks: timing, counting, the report table.

Speed goals live here, never in tests: each run measures its own baseline
on the same machine and prints ratios against it.
"""

from __future__ import annotations

import argparse
import os
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any

from support.fscalls import counting_fs_calls
from support.proxy import CountingProxy

#: Starts counting when entered; the callable it yields, called after the
#: block, returns what the block did (file system calls, requests, ...).
CallCounter = Callable[[], AbstractContextManager[Callable[[], int]]]
#: Operation name -> run(i), for one target.
Runs = dict[str, Callable[[int], object]]

PAYLOAD = {"value": "x" * 900, "numbers": list(range(10))}  # about 1 KiB as JSON
GROUP = 100
#: What the object-store benchmarks time, besides the group join.
OPERATIONS = ("store new result", "read result", "STARTED then SUCCESS")
JOIN = f"group join of {GROUP}"


@contextmanager
def fs_calls() -> Iterator[Callable[[], int]]:
    """File system calls that name a path."""
    with counting_fs_calls() as counted:
        yield lambda: sum(counted.values())


@dataclass
class Measurement:
    target: str
    operation: str
    per_second: float
    calls_per_op: float | None


def measure(
    target: str,
    operation: str,
    run: Callable[[int], object],
    count: int,
    counter: CallCounter | None = None,
) -> Measurement:
    """Best of three timed runs of run(i) for count values of i, then one counted run."""
    return compare(operation, {target: run}, count, counter)[0]


def compare(
    operation: str,
    runs: dict[str, Callable[[int], object]],
    count: int,
    counter: CallCounter | None = None,
) -> list[Measurement]:
    """measure() for several targets of one operation, their timed runs taking
    turns, so a busy moment of a shared machine hits them all alike."""
    batches = {target: timed(run) for target, run in runs.items()}
    return compare_batches(operation, batches, count, dict.fromkeys(runs, counter))


#: Runs an operation once for each i of the range; returns the seconds that took.
Batch = Callable[[range], float]


def timed(run: Callable[[int], object]) -> Batch:
    def batch(indices: range) -> float:
        start = time.perf_counter()
        for i in indices:
            run(i)
        return time.perf_counter() - start

    return batch


def compare_batches(
    operation: str,
    batches: dict[str, Batch],
    count: int,
    counters: dict[str, CallCounter | None],
    repeats: int = 3,
) -> list[Measurement]:
    """compare() for targets that time themselves (one in another process, say),
    each with a counter of its own (or none), best of repeats runs."""
    rates: dict[str, list[float]] = {target: [] for target in batches}
    for repeat in range(repeats):
        for target, batch in batches.items():
            rates[target].append(count / batch(range(repeat * count, (repeat + 1) * count)))
    measurements = []
    for target, batch in batches.items():
        calls = None
        counter = counters.get(target)
        if counter is not None:
            with counter() as counted:
                batch(range(repeats * count, repeats * count + 1))
            calls = counted()
        measurements.append(Measurement(target, operation, max(rates[target]), calls))
    return measurements


def report(
    measurements: list[Measurement],
    baseline: str,
    calls: str = "path calls/op",
    goals: dict[tuple[str, str], str] | None = None,
) -> str:
    """One row per measurement, with its ratio to the baseline target of the
    same operation; goals maps (target, operation) to a note printed last."""
    header = f"{'operation':<24} {'target':<16} {'ops/s':>9} {'vs ' + baseline:>9} {calls:>14}"
    if goals:
        header += "  goal"
    rows = [header, "-" * len(header)]
    by_operation: dict[str, list[Measurement]] = {}
    for item in measurements:
        by_operation.setdefault(item.operation, []).append(item)
    for operation, items in by_operation.items():
        base = next((m.per_second for m in items if m.target == baseline), None)
        for item in items:
            ratio = f"{item.per_second / base:.2f}x" if base else "-"
            count = "-" if item.calls_per_op is None else f"{item.calls_per_op:.0f}"
            rate = f"{item.per_second:.0f}" if item.per_second >= 100 else f"{item.per_second:.3g}"
            row = f"{operation:<24} {item.target:<16} {rate:>9} {ratio:>9} {count:>14}"
            goal = (goals or {}).get((item.target, operation))
            rows.append(f"{row}  {goal}" if goal else row)
    return "\n".join(rows)


# -- the object-store benchmarks (bench:s3, bench:gcs, bench:azure) -------------


def object_store_args(doc: str | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=150, help="operations per timed run (default 150)")
    parser.add_argument(
        "--latency",
        type=float,
        default=0,
        help="milliseconds the proxy waits before forwarding each request, like a network round trip",
    )
    return parser.parse_args()


def chosen_storages(parser: argparse.ArgumentParser, given: str, known: Iterable[str]) -> list[str]:
    """The storages named in a comma-separated option, or a usage error naming the unknown ones."""
    known = list(known)
    chosen = [name.strip() for name in given.split(",") if name.strip()]
    unknown = sorted(set(chosen) - set(known))
    if unknown:
        parser.error(f"unknown storages {unknown}: choose from {', '.join(known)}")
    return chosen


def setup_django() -> None:
    import django
    from django.conf import settings

    if not settings.configured:
        settings.configure(INSTALLED_APPS=["django_storage_celery_results"], USE_TZ=True)
    django.setup()


def proxy_requests(proxy: CountingProxy) -> CallCounter:
    """Requests that reach the proxy inside the block."""

    @contextmanager
    def counter() -> Iterator[Callable[[], int]]:
        with proxy.counting() as seen:
            yield lambda: len(seen)

    return counter


def sized_result(size: int) -> str:
    """A task result of size bytes (a string: its JSON is the same size, plus quotes)."""
    return "x" * size


def backend_operations(backend: Any, count: int, result: object = PAYLOAD, repeats: int = 3) -> Runs:
    """The OPERATIONS through a Celery result backend, each on ids of its own
    (enough for repeats timed runs of count and one counted operation)."""
    from celery import states

    ids = [str(uuid.uuid4()) for _ in range(repeats * count + 1)]
    two_step = [str(uuid.uuid4()) for _ in range(repeats * count + 1)]

    def store(i: int) -> None:
        backend.store_result(ids[i], result, states.SUCCESS)

    def read(i: int) -> None:
        backend.get_task_meta(ids[i % count], cache=False)

    def started_then_success(i: int) -> None:
        backend.mark_as_started(two_step[i])
        backend.store_result(two_step[i], result, states.SUCCESS)

    return dict(zip(OPERATIONS, (store, read, started_then_success), strict=True))


def raw_operations(write: Callable[[str], object], read: Callable[[str], object], count: int) -> Runs:
    """The OPERATIONS as plain SDK calls: write(name) stores the encoded result, read(name) gets it."""
    return dict(
        zip(
            OPERATIONS,
            (
                lambda i: write(f"raw/r-{i}"),
                lambda i: read(f"raw/r-{i % count}"),
                lambda i: (write(f"raw/s-{i}"), write(f"raw/s-{i}")),
            ),
            strict=True,
        )
    )


def group_joins(
    apps: dict[str, tuple[Any, bool]], write: Callable[[str], object], read: Callable[[str], object]
) -> Runs:
    """A GROUP-result join per app (target -> (app, join natively?)) vs GROUP sequential raw reads."""
    from celery import states
    from celery.result import AsyncResult, ResultSet

    ids = [str(uuid.uuid4()) for _ in range(GROUP)]
    for task_id in ids:
        for app, _native in apps.values():
            app.backend.store_result(task_id, PAYLOAD, states.SUCCESS)
        write(f"raw/g-{task_id}")

    def joining(app: Any, native: bool) -> Callable[[int], object]:
        def run(_: int) -> None:
            app.backend._cache.clear()
            pending = ResultSet([AsyncResult(task_id, app=app) for task_id in ids], app=app)
            assert len(pending.join_native(timeout=30) if native else pending.join(timeout=30)) == GROUP

        return run

    def read_one_by_one(_: int) -> None:
        for task_id in ids:
            read(f"raw/g-{task_id}")

    return {"raw": read_one_by_one, **{target: joining(*spec) for target, spec in apps.items()}}


def object_store_measurements(
    targets: dict[str, Runs], joins: Runs, count: int, proxy: CountingProxy
) -> list[Measurement]:
    """Every operation, the targets taking turns, then the joins; requests counted by the proxy."""
    counter = proxy_requests(proxy)
    measurements: list[Measurement] = []
    for operation in OPERATIONS:
        measurements += compare(operation, {t: ops[operation] for t, ops in targets.items()}, count, counter)
    return measurements + compare(JOIN, joins, join_count(count), counter)


def join_count(count: int) -> int:
    return max(3, count // 100)


def object_store_goals(
    measurements: list[Measurement], notes: dict[tuple[str, str], str] | None = None
) -> dict[tuple[str, str], str]:
    """The issues' targets, met or missed, next to the figures they judge:
    ours at 0.8x raw or better for store and read, a join 3x faster than sequential reads."""
    rate = {(m.target, m.operation): m.per_second for m in measurements}
    goals = dict(notes or {})
    for operation in ("store new result", "read result"):
        ratio = rate[("ours", operation)] / rate[("raw", operation)]
        goals[("ours", operation)] = f">= 0.80x: {'met' if ratio >= 0.8 else 'MISSED'}"
    ours, sequential = 1000 / rate[("ours", JOIN)], 1000 / rate[("raw", JOIN)]
    faster = "met" if sequential / ours >= 3 else "MISSED"
    goals[("ours", JOIN)] = f"{ours:.0f} ms vs {sequential:.0f} ms sequential; >= 3x faster: {faster}"
    return goals


@dataclass
class ObjectStoreTargets:
    """What one store's benchmark brings: the apps and the raw SDK calls
    (for the folder: plain file writes and reads)."""

    #: A Celery app on this backend.
    ours: Any
    #: Celery's own backend for the store: target name, app, joins natively.
    celery: tuple[str, Any, bool]
    #: The raw SDK's store of bytes under a name, and its read.
    write: Callable[[str, bytes], object]
    read: Callable[[str], object]
    #: The earlier package's storage on the same store, as its docs configure
    #: it: the Storage class path and its constructor arguments.
    earlier: tuple[str, dict[str, Any]] | None = None
    #: The raw SDK's write with the guarantee a result store needs: create-only
    #: (a late duplicate never replaces a result), and on a folder crash-safe
    #: too (temp file, fsync, link into place). bench:compare's "raw + same work".
    write_once: Callable[[str, bytes], object] | None = None


def run_object_store_benchmark(
    doc: str | None,
    emulator: str,
    start: Callable[[], tuple[CountingProxy, Callable[[], object]]],
    prepare: Callable[[CountingProxy], ObjectStoreTargets],
    notes: dict[tuple[str, str], str] | None = None,
) -> None:
    """One bench:s3/gcs/azure run: start the emulator behind the proxy (start
    returns the proxy and how to stop both), time every target, print the table."""
    args = object_store_args(doc)
    setup_django()
    started = time.perf_counter()
    proxy, stop = start()
    try:
        targets = prepare(proxy)
        encoded = targets.ours.backend.encode({"status": "SUCCESS", "result": PAYLOAD})

        def write(name: str) -> None:
            targets.write(name, encoded)

        celery_name, celery_app, celery_native = targets.celery
        proxy.delay = args.latency / 1000
        runs = {
            "raw": raw_operations(write, targets.read, args.count),
            "ours": backend_operations(targets.ours.backend, args.count),
            celery_name: backend_operations(celery_app.backend, args.count),
        }
        apps = {"ours": (targets.ours, True), celery_name: (celery_app, celery_native)}
        joins = group_joins(apps, write, targets.read)
        measurements = object_store_measurements(runs, joins, args.count, proxy)
    finally:
        stop()
    print(
        f"1 KiB results; best of 3 runs of {args.count} operations ({join_count(args.count)} joins); "
        f"{os.cpu_count()} CPUs; {emulator} behind the counting proxy (+{args.latency:g} ms); "
        f"{time.perf_counter() - started:.0f} s"
    )
    goals = object_store_goals(measurements, notes)
    print(report(measurements, baseline="raw", calls="requests/op", goals=goals))
