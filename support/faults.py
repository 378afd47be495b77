"""What the counting proxy answers instead of forwarding: a fault, or a
store's error answer, for the requests a predicate matches."""

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
