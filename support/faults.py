"""What the counting proxy does instead of a plain forward, for the requests
a predicate matches: answer a fault without forwarding (a refused request),
or forward and then lose, replace, cut or delay the answer (the store acted,
the client does not know), or forward without the conditions (a store that
ignores them)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from support.proxy import Request


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
    #: Forward the request first, so the store applies it, then drop the
    #: connection (with drop) or answer status instead of the store's answer.
    after_forward: bool = False
    #: Forward, then send the store's status and headers but only half the body.
    cut: bool = False
    #: Seconds to wait before answering (past a client's read timeout, say).
    delay: float = 0.0
    #: Forward without If-Match / If-None-Match, and pass the store's answer on.
    strip_conditions: bool = False

    @property
    def forwards(self) -> bool:
        return self.after_forward or self.cut or self.strip_conditions


def lost_answer(matches: Callable[[Request], bool], times: int = 1) -> Fault:
    """The store applies the request; the answer never reaches the client."""
    return Fault(0, matches=matches, times=times, drop=True, after_forward=True)


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
