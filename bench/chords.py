"""Benchmark: one chord of N tasks (default 100) on each storage, with a real worker.

    hatch run bench:chords [--size N] [--storages filesystem,s3,gcs,azure]
                           [--targets native,polling,celery] [--timeout S] [--latency MS]
                           [--uncounted] [--no-fsync]

A Redis broker and a `celery worker` subprocess (prefork, --processes 4) per
configuration; the header is N `tests.add` tasks (with --task-seconds S:
`tests.sleep` tasks of S seconds each), the callback `tests.total`.
On each storage (the filesystem provider; S3 on moto, GCS on fake-gcs-server,
Azure on Azurite, each behind the counting proxy):
  native   this backend: the header tasks counted in buckets by position
           (markers on object stores, state objects in the folder), the
           last one sends the callback
  polling  this backend on the generic adapter (result_storage_adapter =
           "generic"), which cannot write conditionally, so Celery's
           celery.chord_unlock task polls the header results
  celery   Celery's own backend for that store, where one runs here: file://,
           s3://, azureblockblob:// (all poll with chord_unlock); Celery's
           gcs:// backend counts chords in Firestore, which has no emulator here

The emulators answer in well under a millisecond and one request at a time
(one Python or Node process), so with no added latency the emulator's total
work decides the wall time. --latency MS makes the proxy hold each request
that long before forwarding it, as a network round trip to a cloud store
does (concurrent requests wait side by side), for every target alike.

On the folder, --uncounted leaves this backend's file system calls uncounted,
as Celery's file:// calls cannot be counted, so the wall times compare like
for like (counting wraps every call that names a path); --no-fsync makes
os.fsync a no-op in this backend's workers, to show what the folder's crash
safety costs (Celery's file:// never fsyncs).

Figures per chord, after a warm-up chord of 16 tasks on the same worker:
wall time from apply until the worker logs the callback's success; store
calls until every task the worker received has finished (HTTP requests
through the proxy, or for the filesystem the calls naming a path in the
results folder, in the worker and in this process); files touched; messages
the worker received (header, callback, every chord_unlock run); and for
native chords the chord state writes that lost a race and were retried.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.harness import chosen_storages, setup_django
from support.fscalls import Touched, touching
from support.processes import RedisServer, Worker
from support.proxy import CountingProxy, Request
from support.stores.azure import AzureStore, azurite_connection_string
from support.stores.gcs import GCSStore
from support.stores.s3 import S3_CREDENTIALS, S3Store, s3_client

STORAGES = ("filesystem", "s3", "gcs", "azure")
#: What runs on each storage: this backend counting chords itself, this
#: backend on the generic adapter (chord_unlock), Celery's own backend.
TARGETS = ("native", "polling", "celery")
PROCESSES = 4  # the default of --processes
WARM_UP = 16
#: Longest wait for a chord's callback, in seconds.
TIMEOUT = 180
RECEIVED = re.compile(r"Task (\S+)\[([0-9a-f-]+)\] received")
BENCH_TASK = re.compile(r"bench-task (\{.*\})")


@dataclass
class Target:
    storage: str
    name: str
    #: Celery settings (lowercase, JSON-able): the worker and the client get the same.
    conf: dict
    proxy: CountingProxy | None = None
    #: The results folder, whose path calls are counted (filesystem).
    folder: str | None = None
    #: Path calls not counted: the backend bound open() at import, or --uncounted.
    uncounted: bool = False
    #: os.fsync does nothing in the worker (--no-fsync).
    no_fsync: bool = False
    note: str = ""


@dataclass
class Outcome:
    target: Target
    wall: float | None = None
    calls: int | None = None
    files: int | None = None
    messages: int = 0
    unlocks: int = 0
    chord_writes: int = 0
    conflicts: int = 0
    problem: str = ""
    tasks: dict[str, int] = field(default_factory=dict)
    #: Requests by kind (PUT, GET, HEAD, LIST, DELETE), through the proxy.
    kinds: Counter[str] = field(default_factory=Counter)


# -- the storages: each yields its targets while its emulator runs -------------------


def ours(
    storage: str,
    config: dict,
    proxy: CountingProxy | None = None,
    folder: str | None = None,
    generic: bool = False,
) -> Target:
    """This backend with the storage's preset: counting chords itself, or (generic)
    forced onto the generic adapter, which cannot write conditionally and polls."""
    conf = {"result_storage": storage, "result_storage_config": config}
    if generic:
        conf["result_storage_adapter"] = "generic"
    return Target(storage, "polling" if generic else "native", conf, proxy, folder=folder)


@contextlib.contextmanager
def filesystem(work: Path) -> Iterator[list[Target]]:
    def folder(name: str) -> str:
        path = work / name
        path.mkdir()
        return str(path)

    native, polling, celery = folder("native"), folder("polling"), folder("celery")
    yield [
        ours("filesystem", {"location": native}, folder=native),
        ours("filesystem", {"location": polling}, folder=polling, generic=True),
        Target(
            "filesystem",
            "celery file://",
            {"result_backend": f"file://{celery}"},
            folder=celery,
            uncounted=True,
        ),
    ]


@contextlib.contextmanager
def s3() -> Iterator[list[Target]]:
    emulator = S3Store.start()
    proxy = emulator.proxy
    client = s3_client(emulator.server.url)

    def bucket() -> dict:
        name = f"chords-{uuid.uuid4().hex[:12]}"
        client.create_bucket(Bucket=name)
        return {"bucket_name": name, "endpoint_url": proxy.url, **S3_CREDENTIALS}

    try:
        celery = bucket()
        yield [
            ours("s3", bucket(), proxy),
            ours("s3", bucket(), proxy, generic=True),
            Target(
                "s3",
                "celery s3://",
                {
                    "result_backend": "s3://",
                    "s3_endpoint_url": proxy.url,
                    "s3_bucket": celery["bucket_name"],
                    "s3_access_key_id": S3_CREDENTIALS["access_key"],
                    "s3_secret_access_key": S3_CREDENTIALS["secret_key"],
                    "s3_region": S3_CREDENTIALS["region_name"],
                },
                proxy,
            ),
        ]
    finally:
        emulator.stop()


@contextlib.contextmanager
def gcs() -> Iterator[list[Target]]:
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    emulator = GCSStore.start()
    proxy, server = emulator.proxy, emulator.server
    # The storage's client, in the workers (which inherit it) and here, is
    # anonymous and goes through the proxy: GoogleCloudStorage takes no endpoint.
    os.environ["STORAGE_EMULATOR_HOST"] = proxy.url
    # No background bucket lookups (google-cloud-storage 3.x), so every request counted is the backend's.
    os.environ["DISABLE_GCS_PYTHON_CLIENT_OTEL_BUCKET_METADATA"] = "true"
    client = storage.Client(
        project="bench", credentials=AnonymousCredentials(), client_options={"api_endpoint": server.url}
    )

    def bucket() -> dict:
        name = f"chords-{uuid.uuid4().hex[:12]}"
        client.create_bucket(name)
        return {"bucket_name": name, "project_id": "bench"}

    try:
        yield [
            ours("gcs", bucket(), proxy),
            ours("gcs", bucket(), proxy, generic=True),
            Target("gcs", "celery gcs://", {}, note="skipped: counts chords in Firestore (no emulator here)"),
        ]
    finally:
        del os.environ["STORAGE_EMULATOR_HOST"]
        emulator.stop()


@contextlib.contextmanager
def azure() -> Iterator[list[Target]]:
    from azure.storage.blob import BlobServiceClient

    emulator = AzureStore.start()
    proxy = emulator.proxy
    service = BlobServiceClient.from_connection_string(azurite_connection_string(emulator.server.url))
    connection_string = azurite_connection_string(proxy.url)

    def container() -> str:
        name = f"chords-{uuid.uuid4().hex[:12]}"
        service.create_container(name)
        return name

    try:
        yield [
            ours("azure", {"connection_string": connection_string, "azure_container": container()}, proxy),
            ours(
                "azure",
                {"connection_string": connection_string, "azure_container": container()},
                proxy,
                generic=True,
            ),
            Target(
                "azure",
                "celery azureblockblob://",
                {
                    "result_backend": f"azureblockblob://{connection_string}",
                    "azureblockblob_container_name": container(),
                },
                proxy,
            ),
        ]
    finally:
        emulator.stop()


# -- one configuration -------------------------------------------------------------------


def header_task(seconds: float) -> tuple[str, Callable[[int], tuple], Callable[[int], float]]:
    """The header's task name, its arguments for task i, and the callback's value for a chord of n."""
    if seconds:
        return "tests.sleep", lambda i: (seconds,), lambda n: n * seconds
    return "tests.add", lambda i: (i, i), lambda n: n * (n - 1)


def run_chords(
    target: Target, broker_url: str, size: int, processes: int, seconds: float, log: Path
) -> Outcome:
    """A worker for the target, a warm-up chord, then the measured one."""
    from celery import Celery, chord

    conf = {"broker_url": broker_url, "result_backend": "django-storage", **target.conf}
    env = {"DJANGO_SETTINGS_MODULE": "bench.chord_worker", "BENCH_CELERY": json.dumps(conf)}
    if target.folder and not target.uncounted:
        env["BENCH_FOLDER"] = target.folder
    if target.no_fsync:
        env["BENCH_NO_FSYNC"] = "1"
    app = Celery(f"bench-{target.storage}-{target.name}", set_as_current=False)
    app.conf.update(result_extended=True, **conf)
    worker = Worker(env, log, concurrency=processes, start_timeout=max(60, TIMEOUT / 2))
    task, arguments, total = header_task(seconds)
    try:

        def one_chord(tasks: int) -> tuple[float | None, int, str]:
            """Seconds from apply to the callback's success (None: timed out), log offset, callback id."""
            header = [app.signature(task, args=arguments(i)) for i in range(tasks)]
            offset = log.stat().st_size
            started = time.perf_counter()
            result = chord(header)(app.signature("tests.total"))
            done = f"Task tests.total[{result.id}] succeeded"
            while done not in read_log(log, offset):
                if f"Task tests.total[{result.id}] raised" in read_log(log, offset):
                    raise RuntimeError(f"the callback failed:\n{tail(log, offset)}")
                if time.perf_counter() - started > TIMEOUT:
                    return None, offset, result.id
                time.sleep(0.01)
            return time.perf_counter() - started, offset, result.id

        wall, _, _ = one_chord(WARM_UP)
        if wall is None:
            return Outcome(target, problem=f"the warm-up chord did not complete:\n{tail(log, 0)}")
        settle(log, 0)
        outcome = Outcome(target)
        with counting(target) as counted:
            outcome.wall, offset, callback = one_chord(size)
            settled = settle(log, offset)
        if outcome.wall is None:
            outcome.problem = f"no callback within {TIMEOUT} s:\n{tail(log, offset)}"
        elif not settled:
            outcome.problem = f"tasks still running after the callback:\n{tail(log, offset)}"
        else:
            value = app.AsyncResult(callback).get(timeout=30)
            if abs(value - total(size)) > 1e-6:
                outcome.problem = f"the callback returned {value!r}"
        tally(outcome, read_log(log, offset), counted())
        return outcome
    finally:
        worker.stop()
        app.close()


@contextlib.contextmanager
def counting(target: Target) -> Iterator[Callable[[], Touched | list[Request] | None]]:
    """This process's share of the store calls (requests: every process's)."""
    if target.proxy is not None:
        with target.proxy.counting() as seen:
            yield lambda: seen
    elif target.folder and not target.uncounted:
        with touching(target.folder) as touched:
            yield lambda: touched
    else:
        yield lambda: None


def request_kind(request: Request) -> str:
    """PUT, GET, HEAD, LIST or DELETE (a bulk delete too), on S3, GCS and Azure."""
    query = request.query
    if request.method == "GET" and (
        "list-type=" in query or "comp=list" in query or request.path.rstrip("/").endswith("/o")
    ):
        return "LIST"
    if request.method == "POST" and ("delete" in query or "comp=batch" in query or "/batch/" in request.path):
        return "DELETE"
    if request.method == "POST":  # GCS uploads
        return "PUT"
    return request.method


def tally(outcome: Outcome, output: str, counted: Touched | list[Request] | None) -> None:
    received = RECEIVED.findall(output)
    for name, _ in received:
        outcome.tasks[name] = outcome.tasks.get(name, 0) + 1
    outcome.messages = len(received)
    outcome.unlocks = outcome.tasks.get("celery.chord_unlock", 0)
    calls, paths = 0, set()
    for line in BENCH_TASK.findall(output):
        task = json.loads(line)
        outcome.chord_writes += task["chord_writes"]
        outcome.conflicts += task["conflicts"]
        calls += task.get("calls", 0)
        paths.update(task.get("paths", ()))
    if isinstance(counted, Touched):
        outcome.calls, outcome.files = calls + counted.calls, len(paths | counted.paths)
    elif isinstance(counted, list):
        outcome.calls = len(counted)
        outcome.kinds = Counter(request_kind(request) for request in counted)


def settle(log: Path, offset: int, timeout: float = 30) -> bool:
    """Wait until every task the worker received since offset has finished."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        output = read_log(log, offset)
        if len(BENCH_TASK.findall(output)) >= len(RECEIVED.findall(output)):
            return True
        time.sleep(0.05)
    return False


def read_log(log: Path, offset: int) -> str:
    with log.open("rb") as handle:
        handle.seek(offset)
        return handle.read().decode("utf-8", "replace")


def tail(log: Path, offset: int, lines: int = 40) -> str:
    return "\n".join(read_log(log, offset).splitlines()[-lines:])


# -- the table -----------------------------------------------------------------------------


def table(outcomes: list[Outcome], size: int) -> str:
    header = (
        f"{'storage':<11} {'target':<25} {'wall s':>7} {'store calls':>11} {'per task':>8} "
        f"{'files':>6} {'messages':>8} {'chord_unlock':>12} {'conflicts':>9}  requests by kind"
    )
    rows = [header, "-" * len(header)]
    for item in outcomes:
        start = f"{item.target.storage:<11} {item.target.name:<25}"
        if item.target.note:
            rows.append(f"{start} {item.target.note}")
            continue
        wall = "-" if item.wall is None else f"{item.wall:.2f}"
        calls = "-" if item.calls is None else str(item.calls)
        per_task = "-" if item.calls is None else f"{item.calls / size:.2f}"
        files = "-" if item.files is None else str(item.files)
        conflicts = str(item.conflicts) if item.chord_writes else "-"
        rows.append(
            f"{start} {wall:>7} {calls:>11} {per_task:>8} {files:>6} {item.messages:>8} "
            f"{item.unlocks:>12} {conflicts:>9}  {kinds(item.kinds)}"
        )
    return "\n".join(rows)


def kinds(counted: Counter[str]) -> str:
    return " ".join(f"{kind} {count}" for kind, count in sorted(counted.items()))


def main() -> None:
    global TIMEOUT
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", type=int, default=100, help="header tasks per chord (default 100)")
    parser.add_argument(
        "--processes", type=int, default=PROCESSES, help=f"worker processes (default {PROCESSES})"
    )
    parser.add_argument(
        "--task-seconds",
        type=float,
        default=0,
        help="header tasks sleep this long instead of adding (default 0: tests.add)",
    )
    parser.add_argument(
        "--storages",
        default=",".join(STORAGES),
        help=f"comma-separated, of {', '.join(STORAGES)} (default: all)",
    )
    parser.add_argument(
        "--targets",
        default=",".join(TARGETS),
        help=f"comma-separated, of {', '.join(TARGETS)} (default: all)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=TIMEOUT,
        help=f"longest wait for a callback, in seconds, and half of it for a worker to start "
        f"(default {TIMEOUT}; raise it on a loaded machine)",
    )
    parser.add_argument(
        "--latency",
        type=float,
        default=0,
        help="milliseconds the proxy holds each request before forwarding it, like a round trip "
        "to a cloud store (default 0)",
    )
    parser.add_argument(
        "--uncounted",
        action="store_true",
        help="the folder: leave this backend's file system calls uncounted, like file://'s",
    )
    parser.add_argument(
        "--no-fsync", action="store_true", help="the folder: os.fsync does nothing in this backend's workers"
    )
    args = parser.parse_args()
    TIMEOUT = args.timeout
    chosen = chosen_storages(parser, args.storages, STORAGES)
    targets = chosen_storages(parser, args.targets, TARGETS)
    # google-auth would otherwise look for the GCE metadata server (workers inherit it).
    os.environ.setdefault("NO_GCE_CHECK", "true")
    setup_django()
    task = header_task(args.task_seconds)[0]

    started = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="bench-chords-"))
    storages = {"filesystem": lambda: filesystem(work), "s3": s3, "gcs": gcs, "azure": azure}
    redis = RedisServer()
    outcomes: list[Outcome] = []
    try:
        for storage in chosen:
            with storages[storage]() as offered:
                for target in offered:
                    if target.name.split()[0] not in targets:
                        continue
                    if target.proxy is not None:
                        target.proxy.delay = args.latency / 1000
                    if target.folder:
                        target.uncounted = target.uncounted or args.uncounted
                        target.no_fsync = args.no_fsync  # file:// never fsyncs anyway
                    if target.note:
                        outcomes.append(Outcome(target))
                        continue
                    # a database of its own per configuration: nothing left over reaches the next worker
                    broker = f"{redis.url.rsplit('/', 1)[0]}/{len(outcomes) % 16}"
                    log = work / f"worker-{storage}-{target.name.split()[0]}.log"
                    outcomes.append(
                        run_chords(target, broker, args.size, args.processes, args.task_seconds, log)
                    )
                    print(f"  {storage} {target.name}: done", file=sys.stderr, flush=True)
    finally:
        redis.stop()

    print(
        f"chords of {args.size} {task} tasks, tests.total callback; celery worker: prefork, "
        f"{args.processes} processes; Redis broker; {os.cpu_count()} CPUs; "
        f"{args.latency:g} ms added per request; "
        f"folder calls {'uncounted' if args.uncounted else 'counted'}"
        f"{', fsync off' if args.no_fsync else ''}; "
        f"{time.perf_counter() - started:.0f} s"
    )
    print(table(outcomes, args.size))
    for item in outcomes:
        extra = {name: count for name, count in item.tasks.items() if name != "celery.chord_unlock"}
        if item.problem:
            print(f"\n{item.target.storage} {item.target.name}: {item.problem}")
        elif item.tasks and extra != {task: args.size, "tests.total": 1}:
            print(f"\n{item.target.storage} {item.target.name}: tasks received {item.tasks}")
    print(f"\nworker logs in {work}")


if __name__ == "__main__":
    main()
