"""Shared pieces of the benchmarks: timing, counting, the report table.

Speed goals live here, never in tests: each run measures its own baseline
on the same machine and prints ratios against it.
"""

from __future__ import annotations

import argparse
import os
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any

from tests.emulators import CountingProxy
from tests.fscalls import counting_fs_calls

#: Starts counting when entered; the callable it yields, called after the
#: block, returns what the block did (file system calls, requests, ...).
CallCounter = Callable[[], AbstractContextManager[Callable[[], int]]]
#: An operation's run(i) per operation name, for one target.
Runs = dict[str, Callable[[int], object]]

PAYLOAD = {"value": "x" * 900, "numbers": list(range(10))}  # about 1 KiB as JSON
OPERATIONS = ("store new result", "read result", "STARTED then SUCCESS")
GROUP = 100
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
    rates: dict[str, list[float]] = {target: [] for target in runs}
    for repeat in range(3):
        for target, run in runs.items():
            start = time.perf_counter()
            for i in range(repeat * count, (repeat + 1) * count):
                run(i)
            rates[target].append(count / (time.perf_counter() - start))
    measurements = []
    for target, run in runs.items():
        calls = None
        if counter is not None:
            with counter() as counted:
                run(3 * count)
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


def arguments(doc: str, count: int, latency: bool = False) -> argparse.Namespace:
    """The command line of a benchmark: --count, and --latency for a store behind the proxy."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--count", type=int, default=count, help=f"operations per timed run (default {count})"
    )
    if latency:
        parser.add_argument(
            "--latency",
            type=float,
            default=0,
            help="milliseconds the proxy waits before forwarding each request, like a network round trip",
        )
    return parser.parse_args()


def celery_app(name: str, **conf: Any) -> Any:
    """A Celery app (Django set up first) with this backend unless conf names another."""
    import django
    from celery import Celery
    from django.conf import settings

    if not settings.configured:
        settings.configure(INSTALLED_APPS=["django_storage_celery_results"], USE_TZ=True)
        django.setup()
    app = Celery(name, set_as_current=False)
    app.conf.update({"result_backend": "django-storage", **conf})
    return app


def backend_operations(backend: Any, count: int) -> Runs:
    """The timed operations through a Celery result backend, on fresh task ids."""
    from celery import states

    ids = [str(uuid.uuid4()) for _ in range(3 * count + 1)]
    two_step = [str(uuid.uuid4()) for _ in range(3 * count + 1)]

    def store(i: int) -> None:
        backend.store_result(ids[i], PAYLOAD, states.SUCCESS)

    def read(i: int) -> None:
        backend.get_task_meta(ids[i % count], cache=False)

    def started_then_success(i: int) -> None:
        backend.mark_as_started(two_step[i])
        backend.store_result(two_step[i], PAYLOAD, states.SUCCESS)

    return dict(zip(OPERATIONS, (store, read, started_then_success), strict=True))


def group_joins(
    apps: dict[str, Any], write_raw: Callable[[str], object], read_raw: Callable[[str], object]
) -> Runs:
    """Joins of a GROUP results' group per app, against reading the results raw one after another.

    Each app stores the results and write_raw(task_id) stores them raw. "ours"
    joins natively (one batch read); Celery's own backends, which have no batch
    read, join one result after another.
    """
    from celery import states
    from celery.result import AsyncResult, ResultSet

    ids = [str(uuid.uuid4()) for _ in range(GROUP)]
    for task_id in ids:
        for app in apps.values():
            app.backend.store_result(task_id, PAYLOAD, states.SUCCESS)
        write_raw(task_id)

    def joining(app: Any, native: bool) -> Callable[[int], object]:
        def run(_: int) -> None:
            app.backend._cache.clear()
            pending = ResultSet([AsyncResult(task_id, app=app) for task_id in ids], app=app)
            assert len(pending.join_native(timeout=30) if native else pending.join(timeout=30)) == GROUP

        return run

    def read_one_by_one(_: int) -> None:
        for task_id in ids:
            read_raw(task_id)

    return {
        "raw": read_one_by_one,
        **{target: joining(app, target == "ours") for target, app in apps.items()},
    }


def proxy_requests(proxy: CountingProxy) -> CallCounter:
    """Requests through the counting proxy."""

    @contextmanager
    def counter() -> Iterator[Callable[[], int]]:
        with proxy.counting() as seen:
            yield lambda: len(seen)

    return counter


def joins_for(count: int) -> int:
    return max(3, count // 100)


def measure_object_store(
    proxy: CountingProxy, targets: dict[str, Runs], joins: Runs, args: argparse.Namespace
) -> list[Measurement]:
    """Every operation of every target, then the group joins, counted in requests through the proxy."""
    counter = proxy_requests(proxy)
    proxy.delay = args.latency / 1000
    measurements: list[Measurement] = []
    for operation in OPERATIONS:
        runs = {target: operations[operation] for target, operations in targets.items()}
        measurements += compare(operation, runs, args.count, counter)
    measurements += compare(JOIN, joins, joins_for(args.count), counter)
    return measurements


def object_store_goals(measurements: list[Measurement]) -> dict[tuple[str, str], str]:
    """The issue's targets, met or missed, next to the figures they judge."""
    rate = {(m.target, m.operation): m.per_second for m in measurements}
    notes = {}
    for operation in ("store new result", "read result"):
        ratio = rate[("ours", operation)] / rate[("raw", operation)]
        notes[("ours", operation)] = f">= 0.80x: {'met' if ratio >= 0.8 else 'MISSED'}"
    ours, sequential = 1000 / rate[("ours", JOIN)], 1000 / rate[("raw", JOIN)]
    faster = "met" if sequential / ours >= 3 else "MISSED"
    notes[("ours", JOIN)] = f"{ours:.0f} ms vs {sequential:.0f} ms sequential; >= 3x faster: {faster}"
    return notes


def object_store_report(
    measurements: list[Measurement],
    args: argparse.Namespace,
    emulator: str,
    started: float,
    goals: dict[tuple[str, str], str],
) -> str:
    heading = (
        f"1 KiB results; best of 3 runs of {args.count} operations ({joins_for(args.count)} joins); "
        f"{os.cpu_count()} CPUs; {emulator} behind the counting proxy (+{args.latency:g} ms); "
        f"{time.perf_counter() - started:.0f} s"
    )
    return f"{heading}\n{report(measurements, baseline='raw', calls='requests/op', goals=goals)}"
