"""bench:cli: the command line at scale, on each emulator and the folder.

For each store and each size it fills one location with N results (written
with the raw client, in parallel: half of them, a pause, the other half),
then runs the real command line as a user would,
``celery -A support.project.celery_app results ...``, one subprocess per
operation:

* ``ls --limit 50``: the goal is one listing page and 50 reads;
* ``stats``: one listing pass plus one read per task result;
* ``purge --older-than <the pause>``: one listing pass plus the batched
  deletes of the older half (no reads: the listing's modified times decide).

It prints the requests per operation (counted by the counting proxy in front
of the emulator; on the folder none are made), the time, and the peak RSS of
the command's process (its VmHWM), so memory can be compared
between sizes: flat memory means nothing holds the whole listing. The first
row of each store, ``ls --help``, is what starting the command costs
(Python, Celery, Django and the app, no storage work).

    hatch run bench:cli                              # 10,000 on every store
    hatch run bench:cli --sizes 10000,100000 --stores filesystem,s3
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("NO_GCE_CHECK", "true")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "support.project.settings")

from support.stores import STORES  # noqa: E402

ALL = ("filesystem", "s3", "gcs", "azure")
TASK_PREFIX = "celery-task-meta-"
#: Threads that write the fill through the raw client.
FILL_THREADS = 32
#: Runs `celery ...` and, at exit, writes its peak RSS (VmHWM, KiB) to
#: $BENCH_PEAK_FILE. VmHWM belongs to the program exec'd, unlike getrusage's
#: ru_maxrss, which keeps the forked parent's peak across exec.
MEASURED = """
import atexit, os, runpy, sys

def peak():
    with open("/proc/self/status") as status:
        found = [line.split()[1] for line in status if line.startswith("VmHWM:")]
    with open(os.environ["BENCH_PEAK_FILE"], "w") as out:
        out.write(found[0] if found else "0")

atexit.register(peak)
sys.argv = ["celery", *sys.argv[1:]]
runpy.run_module("celery", run_name="__main__")
"""


class Environment:
    """What a StoreUnderTest sets through pytest's monkeypatch, set for this process."""

    def setenv(self, name: str, value: str) -> None:
        os.environ[name] = value

    def setattr(self, target: Any, name: str, value: Any) -> None:
        setattr(target, name, value)


def result_bytes(task_id: str, number: int) -> bytes:
    """A stored SUCCESS result as the backend writes it (JSON, result_extended)."""
    meta = {
        "status": "SUCCESS",
        "result": number,
        "traceback": None,
        "children": [],
        "date_done": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime()),
        "task_id": task_id,
        "name": f"bench.task{number % 7}",
        "args": [number],
        "kwargs": {},
        "worker": "bench@host",
        "retries": 0,
        "queue": "celery",
    }
    return json.dumps(meta).encode()


class Folder:
    """The folder as a store: no proxy, nothing to count."""

    preset = "filesystem"

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="bench-cli-"))
        self.proxy = None

    def worker_config(self) -> dict[str, Any]:
        return {"location": str(self.root)}

    def plant(self, key: str, data: bytes) -> None:
        (self.root / key.removeprefix("celery-results/")).write_bytes(data)

    def calls(self, requests: list[Any]) -> list[str]:
        return []


def fill(store: Any, count: int) -> float:
    """Write count results with the raw client; returns the seconds it took."""
    started = time.perf_counter()

    def write(number: int) -> None:
        task_id = str(uuid.uuid4())
        store.plant(f"celery-results/{TASK_PREFIX}{task_id}", result_bytes(task_id, number))

    with ThreadPoolExecutor(FILL_THREADS) as pool:
        list(pool.map(write, range(count), chunksize=256))
    return time.perf_counter() - started


def run_command(store: Any, preset: str, *args: str) -> tuple[float, int, str, int]:
    """One `celery -A ... results` subprocess: (seconds, peak RSS in KiB, stdout, exit code)."""
    env = {
        **os.environ,
        "TEST_RESULT_STORAGE": preset,
        "TEST_RESULT_STORAGE_CONFIG": json.dumps(store.worker_config()),
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    command = [sys.executable, "-c", MEASURED, "-A", "support.project.celery_app", "results", *args]
    started = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.NamedTemporaryFile("r") as peak:
        env["BENCH_PEAK_FILE"] = peak.name
        process = subprocess.run(command, cwd=REPO, env=env, stdout=out, stderr=subprocess.PIPE, check=False)
        seconds = time.perf_counter() - started
        out.seek(0)
        output = out.read().decode()
        rss = int(peak.read().strip() or 0)
    if process.returncode != 0:
        errors = process.stderr.decode().strip()[-500:]
        print(f"    {' '.join(args)} exited {process.returncode}: {errors}", file=sys.stderr)
    return seconds, rss, output, process.returncode


def measure(store: Any, preset: str, count: int, rows: list[dict[str, Any]]) -> None:
    half = count // 2
    seconds = fill(store, half)
    time.sleep(2)
    cutoff = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(time.time() - 1))
    seconds += fill(store, count - half)
    print(f"  {preset}: filled {count} results in {seconds:.1f} s", flush=True)
    for label, args in (
        ("startup (ls --help)", ("ls", "--help")),
        ("ls --limit 50", ("ls", "--limit", "50", "--json")),
        ("stats", ("stats", "--json")),
        (f"purge --older-than (the older {half})", ("purge", "--older-than", cutoff, "--yes", "--json")),
    ):
        if store.proxy is not None:
            store.proxy.reset()
        seconds, rss, output, code = run_command(store, preset, *args)
        requests = Counter(store.calls(store.proxy.requests)) if store.proxy is not None else Counter()
        check = _check(args[0], output, count, half)
        rows.append(
            {
                "store": preset,
                "results": count,
                "operation": label,
                "requests": dict(sorted(requests.items())),
                "seconds": round(seconds, 2),
                "peak_rss_mib": round(rss / 1024, 1),
                "exit": code,
                "check": check,
            }
        )
        print(
            f"    {label}: {_requests(requests)}, {seconds:.2f} s, {rss / 1024:.0f} MiB peak, {check}",
            flush=True,
        )


def _check(operation: str, output: str, count: int, half: int) -> str:
    """What the command said, against what the fill wrote."""
    if operation == "ls":
        return "help" if output.startswith("Usage") else f"{len(output.splitlines())} listed"
    document = json.loads(output or "{}")
    if operation == "stats":
        return "counted all" if document.get("tasks") == count else f"counted {document.get('tasks')}"
    return (
        "deleted the older half" if document.get("deleted") == half else f"deleted {document.get('deleted')}"
    )


def _requests(requests: Counter[str]) -> str:
    return ", ".join(f"{number} {kind}" for kind, number in sorted(requests.items())) or "no requests"


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| store | results | operation | requests | time | peak RSS |",
        "|---|---:|---|---|---:|---:|",
    ]
    for row in rows:
        requests = _requests(Counter(row["requests"]))
        lines.append(
            f"| {row['store']} | {row['results']:,} | `{row['operation']}` | {requests} "
            f"| {row['seconds']:.1f} s | {row['peak_rss_mib']:.0f} MiB |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--stores", default=",".join(ALL), help="comma-separated: " + ", ".join(ALL))
    parser.add_argument("--sizes", default="10000", help="comma-separated result counts (default 10000)")
    parser.add_argument("--out", default=str(REPO / "bench" / "results" / "cli.md"), help="Markdown table")
    args = parser.parse_args()
    rows: list[dict[str, Any]] = []
    for preset in args.stores.split(","):
        for size in (int(value) for value in args.sizes.split(",")):
            if preset == "filesystem":
                measure(Folder(), preset, size, rows)
                continue
            emulator = STORES[preset].start()
            try:
                store = STORES[preset](emulator, Environment())  # type: ignore[arg-type]
                measure(store, preset, size, rows)
            finally:
                emulator.stop()
    text = table(rows)
    print(text)
    command = "hatch run bench:cli " + " ".join(sys.argv[1:])
    Path(args.out).write_text(f"# bench:cli\n\n`{command.strip()}`\n\n{text}\n", encoding="utf-8")
    (Path(args.out).with_suffix(".json")).write_text(json.dumps(rows, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
