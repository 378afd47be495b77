"""Shared pieces of the benchmarks: timing, call counting, the report table.

Speed goals live here, never in tests: each run measures its own baseline
on the same machine and prints ratios against it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from tests.fscalls import counting_fs_calls


@dataclass
class Measurement:
    target: str
    operation: str
    per_second: float
    calls_per_op: float | None


def measure(
    target: str, operation: str, run: Callable[[int], object], count: int, countable: bool = True
) -> Measurement:
    """Best of three timed runs of run(i) for count values of i, then one counted run."""
    rates = []
    for repeat in range(3):
        start = time.perf_counter()
        for i in range(repeat * count, (repeat + 1) * count):
            run(i)
        rates.append(count / (time.perf_counter() - start))
    calls = None
    if countable:
        with counting_fs_calls() as counted:
            run(3 * count)
        calls = sum(counted.values())
    return Measurement(target, operation, max(rates), calls)


def report(measurements: list[Measurement], baseline: str) -> str:
    header = f"{'operation':<24} {'target':<16} {'ops/s':>9} {'vs ' + baseline:>9} {'path calls/op':>14}"
    rows = [header, "-" * len(header)]
    by_operation: dict[str, list[Measurement]] = {}
    for item in measurements:
        by_operation.setdefault(item.operation, []).append(item)
    for operation, items in by_operation.items():
        base = next((m.per_second for m in items if m.target == baseline), None)
        for item in items:
            ratio = f"{item.per_second / base:.2f}x" if base else "-"
            calls = "-" if item.calls_per_op is None else f"{item.calls_per_op:.0f}"
            rows.append(f"{operation:<24} {item.target:<16} {item.per_second:>9.0f} {ratio:>9} {calls:>14}")
    return "\n".join(rows)
