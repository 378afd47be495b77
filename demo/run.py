"""Run the demo: a real Celery worker, a server-less broker, results in files.

hatch run demo:run        (or ./scripts/demo)
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RUN_DIR = Path(os.environ.get("DEMO_RUN_DIR", HERE / ".run"))
sys.path.insert(0, str(HERE))
os.environ["DJANGO_SETTINGS_MODULE"] = "demoproject.settings"
os.environ["DEMO_RUN_DIR"] = str(RUN_DIR)


def prepare_folders() -> None:
    shutil.rmtree(RUN_DIR, ignore_errors=True)
    for folder in ("broker", "control", "media"):
        (RUN_DIR / folder).mkdir(parents=True)


def start_worker() -> tuple[subprocess.Popen, Path]:
    log = RUN_DIR / "worker.log"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "demoproject",
            "worker",
            "--pool=prefork",
            "--concurrency=2",
            "--loglevel=INFO",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "-n",
            "demo@localhost",
        ],
        cwd=HERE,
        env=os.environ.copy(),
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while b"ready." not in log.read_bytes():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            sys.exit(f"The worker did not start; its log:\n{log.read_text()}")
        time.sleep(0.1)
    return process, log


def describe(result) -> str:
    # One read gives state and progress together; reading result.state and
    # then result.info could see the task finish in between.
    meta = result.backend.get_task_meta(result.id)
    if meta["status"] == "PROGRESS":
        return f"{meta['result']['done']}/{meta['result']['total']} words"
    return meta["status"]


def show_progress(label: str, results: list, summary=None) -> None:
    """Print a line each time the states change, until every result is ready."""
    last = None
    while True:
        line = summary(results) if summary else ", ".join(describe(r) for r in results)
        if line != last:
            print(f"  {label}: {line}", flush=True)
            last = line
        if all(result.ready() for result in results):
            return
        time.sleep(0.1)


def chord_summary(results: list) -> str:
    callback = results[0]
    header = callback.parent.results
    done = sum(1 for result in header if result.ready())
    return f"{done}/{len(header)} header tasks done, callback {callback.state}"


def main() -> int:
    prepare_folders()
    import django

    django.setup()
    from celery import chord, group
    from demoproject.celery import app
    from demoproject.tasks import count_words, square, total

    backend = app.backend
    print(f"Results are stored in: {backend.adapter.describe()}")
    print(f"Broker: kombu filesystem transport in {RUN_DIR / 'broker'}")
    worker, _log = start_worker()
    print("Worker started: prefork pool, 2 processes\n")
    try:
        print("Tasks")
        texts = ["the quick brown fox jumps", "results in any django storage"]
        singles = [count_words.delay(text) for text in texts]
        show_progress("count_words", singles)
        for text, result in zip(texts, singles, strict=True):
            print(f"  count_words({text!r}) = {result.get(timeout=60)}")

        print("\nGroup")
        squares = group(square.s(n) for n in range(1, 6)).apply_async()
        show_progress("square x5", squares.results)
        print(f"  squares = {squares.get(timeout=60)}")

        print("\nChord")
        summed = chord(square.s(n) for n in range(1, 11))(total.s())
        show_progress("sum of squares 1..10", [summed], chord_summary)
        print(f"  total = {summed.get(timeout=60)}")

        print("\nWhere the results are")
        first = singles[0]
        path = Path(backend.adapter.storage.path(backend.get_key_for_task(first.id)))
        print(f"  task {first.id}\n  -> {path}")
        print(f"  {path.read_text()}")
        files = sorted(p.name for p in path.parent.iterdir())
        print(f"  {len(files)} result files in {path.parent}")
    finally:
        worker.terminate()
        worker.wait(30)
    print("\nWorker stopped. Demo finished.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
