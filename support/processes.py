"""Servers on free loopback ports for the tests and the benchmarks: any
emulator's process, redis-server, and `celery worker` subprocesses.

Each store's own emulator (moto, fake-gcs-server, Azurite) is started by its
module in support.stores, with EmulatorProcess.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stop_process(process: subprocess.Popen, grace: float = 30) -> None:
    """Terminate, then kill what does not stop within the grace period."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


class EmulatorProcess:
    """A server subprocess on a free loopback port, stopped by its PID."""

    def __init__(
        self,
        name: str,
        command: Callable[[int], Sequence[str]],
        ready_path: str = "/",
        env: dict[str, str] | None = None,
        log: Path | None = None,
        timeout: float = 60,
        port: int | None = None,
    ) -> None:
        self.name = name
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            list(command(self.port)),
            env={**os.environ, **(env or {})},
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while not self._answers(ready_path):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{name} did not start on port {self.port}")
            time.sleep(0.1)

    def _answers(self, path: str) -> bool:
        try:
            with urllib.request.urlopen(self.url + path, timeout=2):
                return True
        except urllib.error.HTTPError:
            return True  # it answered, even if with an error status
        except OSError:
            return False

    def stop(self) -> None:
        stop_process(self.process)
        if not isinstance(self._log, int):  # subprocess.DEVNULL
            self._log.close()

    def __enter__(self) -> EmulatorProcess:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class RedisServer:
    """redis-server on a free loopback port, without persistence."""

    def __init__(self, timeout: float = 15) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise FileNotFoundError("redis-server is not installed (apt-get install redis-server)")
        port = free_port()
        self.url = f"redis://127.0.0.1:{port}/0"
        self.process = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while not self._pong(port):
            if time.monotonic() > deadline or self.process.poll() is not None:
                self.stop()
                raise RuntimeError(f"redis-server did not start on port {port}")
            time.sleep(0.05)

    @staticmethod
    def _pong(port: int) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        stop_process(self.process, grace=10)


class Worker:
    """A real `celery worker` subprocess (prefork unless another pool is named)
    of the test project's app.

    ``env`` comes on top of this process's environment; the Django settings
    module (``support.project.settings`` unless ``env`` names another) configures it.
    """

    def __init__(
        self,
        env: dict[str, str],
        log: Path,
        concurrency: int = 2,
        pool: str = "prefork",
        start_timeout: float = 60,
    ) -> None:
        broker = env.get("TEST_BROKER_URL", "")
        if broker.startswith("redis://"):
            # Tasks a previous worker left queued (chord_unlock retries, say)
            # must not reach this one: the Redis server is shared by the session.
            import redis

            redis.Redis.from_url(broker).flushdb()
        self.log = log
        self.handle = log.open("wb")
        full_env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "support.project.settings",
            "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
        }
        if os.geteuid() == 0:  # CI runs as root; the pickle tests need the worker anyway
            full_env["C_FORCE_ROOT"] = "1"
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "support.project.celery_app",
                "worker",
                f"--pool={pool}",
                f"--concurrency={concurrency}",
                "--loglevel=INFO",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "-n",
                f"worker-{os.getpid()}-{time.monotonic_ns()}@localhost",
            ],
            cwd=REPO,
            env={**full_env, **env},
            stdout=self.handle,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + start_timeout
        while b"ready." not in log.read_bytes():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"worker did not start:\n{self.output()}")
            time.sleep(0.1)

    def output(self) -> str:
        return self.log.read_bytes().decode("utf-8", "replace")

    def stop(self) -> None:
        stop_process(self.process)
        self.handle.close()
