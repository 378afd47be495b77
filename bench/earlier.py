"""The earlier package (django-storage-celery-results 0.0.2b1) as a benchmark target.

It shares our import name, so it lives in a virtualenv of its own
(bench/.venvs/, made on first use with the same Celery, Django,
django-storages and SDK versions as this environment) and runs in a
subprocess of that virtualenv's Python, which this module also is: run as a
script, it reads one JSON command per line on stdin and answers on stdout.
The subprocess times its own runs, so the pipe costs nothing to its figures,
and it talks to the same emulator through the same counting proxy as the
other targets (for the folder, it counts its own path calls).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import math
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script, in its virtualenv
from bench.harness import Batch, backend_operations, fs_calls, setup_django, sized_result, timed

REPO = Path(__file__).resolve().parent.parent

EARLIER = "django-storage-celery-results==0.0.2b1"
#: Installed beside it at this environment's versions, so only the package differs.
SAME_AS_HERE = {
    "celery": "celery",
    "django": "django",
    "django-storages": "django-storages[s3,google,azure]",
    "boto3": "boto3",
    "google-cloud-storage": "google-cloud-storage",
    "azure-storage-blob": "azure-storage-blob",
}
VENVS = REPO / "bench" / ".venvs"


def requirements() -> list[str]:
    pins = [f"{spec}=={importlib.metadata.version(name)}" for name, spec in SAME_AS_HERE.items()]
    return [EARLIER, *pins]


def earlier_python() -> Path:
    """The virtualenv's Python, the virtualenv made (or remade) when its requirements changed."""
    wanted = "\n".join(requirements())
    venv = VENVS / f"earlier-{hashlib.sha256(wanted.encode()).hexdigest()[:10]}"
    python = venv / "bin" / "python"
    marker = venv / "requirements.txt"
    if marker.exists() and marker.read_text() == wanted:
        return python
    print(f"installing {EARLIER} into {venv} ...", file=sys.stderr)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *wanted.split("\n")],
        check=True,
    )
    marker.write_text(wanted)
    return python


class EarlierPackage:
    """The subprocess, configured as the earlier package's docs say:
    `django_storage_celery_results.backends.StorageBackend` over one Storage."""

    def __init__(self, storage: str, config: dict[str, Any], repeats: int) -> None:
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in close()
        self.process = subprocess.Popen(
            [str(earlier_python()), __file__],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            cwd=REPO,
            text=True,
        )
        self._count_calls = False
        self._calls: int | None = None
        #: (operation, size) -> the exception type its runs raised; their timed runs count as endless.
        self.failures: dict[tuple[str, int], str] = {}
        self.versions = self._call({"storage": storage, "config": config, "repeats": repeats})["versions"]

    def _call(self, command: dict[str, Any]) -> dict[str, Any]:
        assert self.process.stdin and self.process.stdout
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()
        answer = self.process.stdout.readline()
        if not answer:
            self._log.seek(0)
            raise RuntimeError(
                f"the earlier package's process failed:\n{self._log.read().decode(errors='replace')}"
            )
        return json.loads(answer)

    def batch(self, operation: str, size: int, count: int) -> Batch:
        def run(indices: range) -> float:
            answer = self._call(
                {
                    "operation": operation,
                    "size": size,
                    "count": count,
                    "start": indices.start,
                    "stop": indices.stop,
                    "count_calls": self._count_calls,
                }
            )
            self._calls = answer["calls"]
            if "error" in answer:
                self.failures[(operation, size)] = answer["error"]
                return math.inf
            return answer["seconds"]

        return run

    @contextmanager
    def path_calls(self) -> Iterator[Callable[[], int]]:
        """A CallCounter of the path calls the subprocess makes in the block's batch."""
        self._count_calls = True
        try:
            yield lambda: self._calls or 0
        finally:
            self._count_calls = False

    def close(self) -> None:
        assert self.process.stdin
        self.process.stdin.close()
        self.process.wait(30)
        self._log.close()


def serve(commands: IO[str], answers: IO[str]) -> None:
    setup = json.loads(commands.readline())
    setup_django()
    from celery import Celery

    app = Celery("earlier", set_as_current=False)
    app.conf.update(
        result_backend="django_storage_celery_results.backends.StorageBackend",
        result_storage=setup["storage"],
        result_storage_config=setup["config"],
    )
    versions = {
        name: importlib.metadata.version(name) for name in ["django-storage-celery-results", *SAME_AS_HERE]
    }
    print(json.dumps({"versions": versions}), file=answers, flush=True)
    runs: dict[int, Any] = {}
    for line in commands:
        command = json.loads(line)
        size = command["size"]
        if size not in runs:
            result = sized_result(size)
            runs[size] = backend_operations(app.backend, command["count"], result, setup["repeats"])
        batch = timed(runs[size][command["operation"]])
        indices = range(command["start"], command["stop"])
        answer: dict[str, Any] = {"calls": None}
        try:
            if command["count_calls"]:
                with fs_calls() as counted:
                    answer["seconds"] = batch(indices)
                answer["calls"] = counted()
            else:
                answer["seconds"] = batch(indices)
        except Exception as exc:  # reported by its type: the message may hold the payload
            answer["error"] = type(exc).__name__
        print(json.dumps(answer), file=answers, flush=True)


if __name__ == "__main__":
    # Celery's and the SDKs' chatter stays out of the answers.
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    sys.stdout = sys.stderr
    serve(sys.stdin, answers)
