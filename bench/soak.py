"""Soak: a real worker under load and faults on each storage, nothing lost.

    hatch run bench:soak [--tasks 5000] [--chords 20] [--chord-size 100]
                         [--rate 0.05] [--processes 4] [--storages filesystem,s3,gcs,azure]

Per storage, a Redis broker and a `celery worker` (prefork, --processes)
with result_backend_always_retry and task_track_started (STARTED, then
SUCCESS: version-matched writes); the tasks are `tests.add` in batches, the
chords `tests.add` headers with a callback that appends a line to a file
(so the lines count how often it ran). On the object stores (S3 on moto,
GCS on fake-gcs-server, Azure on Azurite, each behind the counting proxy)
the proxy injects --rate faults, every kind the same share: the store's
503 / throttling / 500 answers, connection resets, and after the store acted
answers lost, replaced by a 500, cut short, and (a 2 s client read
timeout) late by 3 s. The folder gets no faults (there is no network).
A second reader (a thread of this process) reads the results while they are
written and records every state.

Printed per storage: faults injected by kind; Celery's backend retries in
the worker (its log's "Retrying" lines); results lost (stored state not
SUCCESS or value wrong); states read going back; objects read that were not
a result (a partial write would be one); chords whose callback ran 0 or 2+
times, or whose get() failed; store requests per task on an idle store (a
first batch without faults) and during the soak; and the worker's peak RSS
(main process plus pool processes) over the first and the last window of
tasks (1,000, or a fifth of --tasks when fewer).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.harness import chosen_storages, setup_django
from support.processes import RedisServer, Worker
from support.soak import Watcher, client_app, inject_mix, lost
from support.stores import STORES, StoreUnderTest

STORAGES = ("filesystem", *STORES)
BATCH = 250
IDLE_TASKS = 200
#: The client read timeout of the workers that see late answers, and how late they come.
READ_TIMEOUT, LATE = 2.0, 3.0


class Environment:
    """What StoreUnderTest needs of pytest's monkeypatch, outside pytest."""

    def setenv(self, name: str, value: str) -> None:
        os.environ[name] = value

    def setattr(self, target: Any, name: str, value: Any) -> None:
        setattr(target, name, value)


@dataclass
class Figures:
    storage: str
    tasks: int = 0
    seconds: float = 0.0
    faults: dict[str, int] = field(default_factory=dict)
    retries: int = 0
    lost: int = 0
    backwards: int = 0
    invalid: int = 0
    reads: int = 0
    callbacks: list[int] = field(default_factory=list)
    chord_errors: list[str] = field(default_factory=list)
    #: What stopped the soak of this storage early, if anything.
    problem: str = ""
    idle_requests: float | None = None
    soak_requests: float | None = None
    rss_first: int = 0
    rss_last: int = 0


def rss_of_tree(pid: int) -> int:
    """Resident bytes of a process and its children (the pool processes)."""
    total, pending = 0, [pid]
    while pending:
        current = pending.pop()
        try:
            with open(f"/proc/{current}/status", encoding="ascii") as status:
                total += next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmRSS:"))
            with open(f"/proc/{current}/task/{current}/children", encoding="ascii") as children:
                pending.extend(int(child) for child in children.read().split())
        except (OSError, StopIteration):
            continue
    return total


class RssSampler(threading.Thread):
    """The worker's RSS every 0.2 s, with how many tasks were done then."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.done = 0
        self.samples: list[tuple[int, int]] = []
        self.running = True

    def run(self) -> None:
        while self.running:
            self.samples.append((self.done, rss_of_tree(self.pid)))
            time.sleep(0.2)

    def peak(self, start: int, end: int) -> int:
        return max((rss for done, rss in self.samples if start <= done <= end), default=0)


@contextmanager
def storage_under_soak(name: str, work: Path) -> Iterator[tuple[StoreUnderTest | None, dict, dict, dict]]:
    """(store, client config, worker config, worker env) of a fresh bucket or folder."""
    if name == "filesystem":
        folder = str(work / "results-filesystem")
        yield None, {"location": folder}, {"location": folder}, {}
        return
    kind = STORES[name]
    emulator = kind.start()
    try:
        store = kind(emulator, Environment())  # type: ignore[arg-type]
        env, config, worker_config = {}, store.config, store.worker_config()
        if name == "s3":  # the worker's botocore timeout, through the storage's Django setting
            env["TEST_S3_READ_TIMEOUT"] = str(READ_TIMEOUT)
        elif name == "gcs":  # the timeout the adapter passes (result_storage_timeout)
            env["TEST_RESULT_STORAGE_TIMEOUT"] = str(READ_TIMEOUT)
        else:
            # Azure as docs/operating.md#rate-limits says to run it, in the worker and in
            # this process (joins, chords' get(), the second reader): the SDK's retries
            # off (each of its retries waits 15 s and more; a chord's get() reads its 100
            # header results one by one, so its faults held the soak for many minutes)
            # and Celery's result_backend_always_retry; the read timeout of the others
            options = {"retry_total": 0, "read_timeout": READ_TIMEOUT}
            config = worker_config = {**config, "client_options": options}
        yield store, config, worker_config, env
    finally:
        emulator.stop()


def soak(name: str, args: argparse.Namespace, redis_url: str, work: Path) -> Figures:
    from celery import chord, group

    figures = Figures(name)
    with storage_under_soak(name, work) as (store, config, worker_config, extra_env):
        env = {
            "TEST_BROKER_URL": redis_url,
            "TEST_RESULT_STORAGE": name,
            "TEST_RESULT_STORAGE_CONFIG": json.dumps(worker_config),
            "TEST_RESULT_BACKEND_ALWAYS_RETRY": "1",
            "TEST_TASK_TRACK_STARTED": "1",
            **extra_env,
        }
        log = work / f"worker-{name}.log"
        worker = Worker(env, log, concurrency=args.processes, start_timeout=300)
        app = client_app(f"soak-{name}", redis_url, name, config, result_backend_always_retry=True)
        add = app.signature("tests.add")
        try:
            # the idle store: a first batch without faults, counted
            idle = [add.clone((i, 0)) for i in range(IDLE_TASKS)]
            before = len(store.proxy.requests) if store else 0
            group(idle).apply_async().join_native(timeout=300)
            if store is not None:
                figures.idle_requests = (len(store.proxy.requests) - before) / IDLE_TASKS
                store.proxy.reset()
            sampler = RssSampler(worker.process.pid)
            sampler.start()
            calls = [add.clone((i, i)) for i in range(args.tasks)]
            ids = [call.freeze().id for call in calls]
            watcher = Watcher(app, ids)
            watcher.start()
            late = LATE if store is not None else None
            counters = inject_mix(store, args.rate, seed=15, late=late) if store is not None else {}
            lines = [work / f"{name}-chord-{number}.lines" for number in range(args.chords)]
            chords = []
            started = time.monotonic()
            every = max(1, (args.tasks // BATCH) // max(1, args.chords))
            for number, start in enumerate(range(0, args.tasks, BATCH)):
                if len(chords) < args.chords and number % every == 0:
                    header = [add.clone((j, 1)) for j in range(args.chord_size)]
                    callback = app.signature("tests.append_line", args=(str(lines[len(chords)]),))
                    chords.append(chord(header)(callback))
                batch = group(calls[start : start + BATCH]).apply_async()
                expected = [2 * i for i in range(start, min(start + BATCH, args.tasks))]
                if batch.join_native(timeout=600) != expected:
                    figures.lost += 1  # a wrong value read back; counted again below
                sampler.done = start + len(expected)
            while len(chords) < args.chords:  # fewer batches than chords: the rest now
                header = [add.clone((j, 1)) for j in range(args.chord_size)]
                callback = app.signature("tests.append_line", args=(str(lines[len(chords)]),))
                chords.append(chord(header)(callback))
            for result in chords:
                try:
                    result.get(timeout=300)
                except Exception as exc:
                    figures.chord_errors.append(f"{type(exc).__name__}: {str(exc)[:160]}")
            figures.seconds = time.monotonic() - started
            time.sleep(2)  # the last callbacks' lines
            watcher.stop()
            sampler.running = False
            soak_requests = len(store.proxy.requests) if store else 0
            if store is not None:
                store.proxy.reset()  # no more faults: read what is stored
            figures.tasks = args.tasks
            figures.faults = {kind: counter.fired for kind, counter in counters.items()}
            figures.lost = len(lost(app, ((task_id, 2 * i) for i, task_id in enumerate(ids))))
            figures.backwards = len(watcher.backwards)
            figures.invalid = len(watcher.invalid)
            figures.reads = watcher.reads
            figures.callbacks = [len(path.read_text().splitlines()) if path.exists() else 0 for path in lines]
            if store is not None:
                figures.soak_requests = soak_requests / (args.tasks + args.chords * (args.chord_size + 1))
            window = min(1000, max(1, args.tasks // 5))
            figures.rss_first = sampler.peak(0, window)
            figures.rss_last = sampler.peak(args.tasks - window, args.tasks)
        finally:
            app.close()
            worker.stop()
        figures.retries = worker.output().count("Retrying")
    return figures


def report(all_figures: list[Figures], args: argparse.Namespace) -> str:
    mib: Callable[[int], str] = lambda value: f"{value / 2**20:.0f} MiB"  # noqa: E731
    rows = [
        "| storage | tasks | s | faults injected | backend retries | lost | backwards | not a result "
        "| chords: callbacks (ok/total), errors | requests/task idle -> soak | worker RSS first -> last |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for f in all_figures:
        once = sum(1 for count in f.callbacks if count == 1)
        faults = sum(f.faults.values())
        requests = (
            f"{f.idle_requests:.2f} -> {f.soak_requests:.2f}" if f.idle_requests is not None else "(folder)"
        )
        rows.append(
            f"| {f.storage} | {f.tasks} | {f.seconds:.0f} | {faults or '-'} | {f.retries} | {f.lost} | "
            f"{f.backwards} | {f.invalid} | {once}/{len(f.callbacks)}, {len(f.chord_errors)} | {requests} | "
            f"{mib(f.rss_first)} -> {mib(f.rss_last)} |"
        )
    lines = [
        f"soak: {args.tasks} tasks and {args.chords} chords of {args.chord_size}, faults on {args.rate:.0%} "
        f"of the object stores' requests; worker prefork x{args.processes}; {os.cpu_count()} CPUs",
        "",
        *rows,
    ]
    for f in all_figures:
        if f.problem:
            lines.append(f"\n{f.storage} stopped: {f.problem}")
        if f.faults:
            lines.append(f"\n{f.storage} faults by kind: {f.faults}")
        if f.chord_errors or any(count != 1 for count in f.callbacks):
            lines.append(f"{f.storage} chords: callbacks ran {f.callbacks}; errors: {f.chord_errors}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tasks", type=int, default=5000)
    parser.add_argument("--chords", type=int, default=20)
    parser.add_argument("--chord-size", type=int, default=100)
    parser.add_argument("--rate", type=float, default=0.05, help="share of requests given a fault")
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--storages", default=",".join(STORAGES))
    args = parser.parse_args()
    chosen = chosen_storages(parser, args.storages, STORAGES)
    os.environ.setdefault("NO_GCE_CHECK", "true")
    setup_django()
    work = Path(tempfile.mkdtemp(prefix="bench-soak-"))
    redis = RedisServer()
    figures = []
    try:
        for number, name in enumerate(chosen):
            broker = f"{redis.url.rsplit('/', 1)[0]}/{number % 16}"
            try:
                figures.append(soak(name, args, broker, work))
            except Exception as exc:  # report it with the others
                figures.append(Figures(name, problem=f"{type(exc).__name__}: {str(exc)[:200]}"))
            print(report(figures[-1:], args), file=sys.stderr, flush=True)
    finally:
        redis.stop()
    print(report(figures, args))
    print(f"\nworker logs in {work}")


if __name__ == "__main__":
    main()
