"""A reverse proxy in front of an emulator that records every request.

It turns "how many requests does this operation make" into an exact,
repeatable number, and where a test injects a fault (support.faults) it
refuses the request, or forwards it and loses, replaces, cuts or delays the
answer, or forwards it without its conditions.
"""

from __future__ import annotations

import http.client
import socket
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from support.faults import Fault

WRITES = frozenset({"PUT", "POST", "PATCH", "DELETE"})
HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "proxy-connection", "upgrade", "te"})
CONDITIONS = frozenset({"if-match", "if-none-match"})
GCS_CONDITIONS = frozenset({"ifGenerationMatch", "ifGenerationNotMatch", "ifMetagenerationMatch"})


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
        #: Requests being answered now, and the most at once since reset().
        self.in_flight = 0
        self.peak_in_flight = 0
        self._lock = threading.Lock()
        self._object_locks: dict[str, threading.Lock] = {}
        handler = type("Handler", (_ProxyHandler,), {"proxy": self})
        self.server = _QuietServer(("127.0.0.1", 0), handler)
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
            self.peak_in_flight = self.in_flight

    @contextmanager
    def answering(self) -> Iterator[None]:
        """Count one request in flight while it is answered."""
        with self._lock:
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            yield
        finally:
            with self._lock:
                self.in_flight -= 1

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


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):  # a client that gave up waiting
            super().handle_error(request, client_address)  # type: ignore[arg-type]


class _CutShort(Exception):
    """The client closed its connection before sending the whole body."""


class _ProxyHandler(BaseHTTPRequestHandler):
    proxy: CountingProxy
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; with Nagle's algorithm the
    # body then waits for the client's delayed ACK (40 ms on Linux).
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass

    def _read(self, size: int) -> bytes:
        data = self.rfile.read(size)
        if len(data) < size:
            raise _CutShort
        return data

    def _body(self) -> bytes:
        """The request's whole body, or _CutShort when the client went away
        mid-body (a killed worker): a store never applies half a request."""
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            while True:
                line = self.rfile.readline()
                if not line:
                    raise _CutShort
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self._read(size))
                self.rfile.readline()
        return self._read(int(self.headers.get("Content-Length") or 0))

    def _forward(self) -> None:
        with self.proxy.answering():
            self._handle()

    def _handle(self) -> None:
        try:
            body = self._body()
        except _CutShort:
            self.close_connection = True
            return
        path, _, query = self.path.partition("?")
        request = Request(self.command, path, query, {k.lower(): v for k, v in self.headers.items()}, body)
        fault = self.proxy.record(request)
        if fault is not None and not fault.forwards:
            time.sleep(fault.delay)
            self._fail(fault)
            return
        if self.proxy.delay:
            time.sleep(self.proxy.delay)
        if self.command in WRITES:
            with self.proxy.object_lock(path):
                answer = self._relay(body, strip_conditions=bool(fault and fault.strip_conditions))
        else:
            answer = self._relay(body)
        if fault is not None:
            time.sleep(fault.delay)
        if fault is None or fault.strip_conditions:
            self._answer(*answer, head=self.command == "HEAD")
        elif fault.cut:
            status, headers, data = answer
            self._answer(status, headers, data, cut=True)
        else:
            self._fail(fault)

    def _fail(self, fault: Fault) -> None:
        if fault.drop:
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
        else:
            self._answer(fault.status, list(fault.headers), fault.body)

    def _relay(self, body: bytes, strip_conditions: bool = False) -> tuple[int, list[tuple[str, str]], bytes]:
        upstream = http.client.HTTPConnection(self.proxy.upstream_host, self.proxy.upstream_port, timeout=60)
        dropped = HOP_BY_HOP | {"content-length"} | (CONDITIONS if strip_conditions else frozenset())
        try:
            target = _without_conditions(self.path) if strip_conditions else self.path
            upstream.putrequest(self.command, target, skip_host=True, skip_accept_encoding=True)
            for key, value in self.headers.items():
                if key.lower() not in dropped:
                    upstream.putheader(key, value)
            upstream.putheader("Content-Length", str(len(body)))
            upstream.endheaders(body)
            response = upstream.getresponse()
            data = response.read()
            headers = [(k, v) for k, v in response.getheaders() if k.lower() not in HOP_BY_HOP]
            return response.status, headers, data
        finally:
            upstream.close()

    def _answer(
        self, status: int, headers: list[tuple[str, str]], body: bytes, head: bool = False, cut: bool = False
    ) -> None:
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
        if cut:  # the promised length, half the bytes, then the connection ends
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
        elif not head:
            self.wfile.write(body)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = _forward


def _without_conditions(target: str) -> str:
    """The request target without GCS's precondition parameters."""
    path, _, query = target.partition("?")
    kept = [part for part in query.split("&") if part and part.split("=")[0] not in GCS_CONDITIONS]
    return path + ("?" + "&".join(kept) if kept else "")
