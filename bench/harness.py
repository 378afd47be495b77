"""Shared pieces of the benchmarks: timing, counting, the report table.

Speed goals live here, never in tests: each run measures its own baseline
on the same machine and prints ratios against it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass

from tests.fscalls import counting_fs_calls

#: Starts counting when entered; the callable it yields, called after the
#: block, returns what the block did (file system calls, requests, ...).
CallCounter = Callable[[], AbstractContextManager[Callable[[], int]]]


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
