"""What the counting proxy does instead of a plain forward, for the requests
a predicate matches: answer a fault without forwarding (a refused request),
or forward and then lose, replace, cut or delay the answer (the store acted,
the client does not know), or forward without the conditions (a store that
ignores them). Sometimes and RateLimit decide which requests get a fault:
a random share, or those past a store's own rate limit."""

from __future__ import annotations

import dataclasses
import random
import sys
import time
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


class Sometimes:
    """A predicate true for a random share of the requests `also` matches,
    counting how often it said yes (the faults injected). With surely_by, it
    is true at the latest on that many-th request it sees, if it never was:
    a short run then has every kind of fault, not most of them."""

    def __init__(
        self,
        rate: float,
        rng: random.Random,
        also: Callable[[Request], bool] | None = None,
        surely_by: int | None = None,
    ) -> None:
        self.rate = rate
        self.rng = rng
        self.also = also
        self.surely_by = surely_by
        self.seen = 0
        self.fired = 0

    def __call__(self, request: Request) -> bool:
        if self.also is not None and not self.also(request):
            return False
        self.seen += 1
        overdue = self.fired == 0 and self.surely_by is not None and self.seen >= self.surely_by
        if self.rng.random() < self.rate or overdue:
            self.fired += 1
            return True
        return False


def at_rate(
    fault: Fault,
    rate: float,
    rng: random.Random,
    also: Callable[[Request], bool] | None = None,
    surely_by: int | None = None,
) -> Fault:
    """The fault for a random share of the requests (also: only those it matches), without end."""
    return dataclasses.replace(fault, matches=Sometimes(rate, rng, also, surely_by), times=sys.maxsize)


class RateLimit:
    """A store's own rate limit as a predicate: true (answer the fault) for a
    request past `limit` accepted requests within `per` seconds with the same
    key (an object name for GCS's one write per second, a prefix for S3);
    requests without a key pass."""

    def __init__(self, key: Callable[[Request], str | None], limit: int, per: float) -> None:
        self.key = key
        self.limit = limit
        self.per = per
        self.accepted: dict[str, list[float]] = {}
        self.refused = 0

    def __call__(self, request: Request) -> bool:
        key = self.key(request)
        if key is None:
            return False
        now = time.monotonic()
        recent = [at for at in self.accepted.get(key, ()) if now - at < self.per]
        if len(recent) >= self.limit:
            self.accepted[key] = recent
            self.refused += 1
            return True
        self.accepted[key] = [*recent, now]
        return False


def rate_limited(answer: Fault, limit: RateLimit) -> Fault:
    """The store's throttling answer for every request past the rate limit."""
    return dataclasses.replace(answer, matches=limit, times=sys.maxsize)
