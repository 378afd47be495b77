"""The tasks of a canvas that can no longer run once a task before them failed.

When a task fails, Celery marks the tasks chained after it as failed too,
but only those with an id of their own: a group, a chain or a chord later in
the chain is skipped, and its tasks stay PENDING forever, so a `.get()` on
them never returns (celery/celery#6437, the same on Celery's Redis backend).
Every task in them is known, frozen into the failed task's request: this
finds them all, so the backend can mark each one failed.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from celery.app.task import Context
from celery.canvas import Signature, _chain, _chord, group, maybe_signature

__all__ = ["Unreachable", "unreachable"]


@dataclass(frozen=True)
class Unreachable:
    """A task that will never run, as a request the backend can store a result for."""

    request: Context
    #: It counts towards a chord that was applied, whose callback waits for it.
    chord_part: bool


def unreachable(elements: Any, app: Any) -> Iterator[Unreachable]:
    """Every task of these canvases (a request's remaining chain, a chord's
    callback), in order, with the groups among them (Celery stores a result
    for a group's own id too)."""
    try:
        items = list(elements or ())
    except TypeError:  # a request's chain may be a placeholder
        return
    for element in items:
        yield from _walk(maybe_signature(element, app=app), app, applied=True)


def _walk(signature: Signature, app: Any, applied: bool) -> Iterator[Unreachable]:
    if isinstance(signature, _chord):
        # A chord later in a failed chain was never applied: no counter
        # waits for its header, but its body may count towards an outer chord.
        yield from _members(signature.tasks, app, applied=False)
        if signature.body is not None:
            yield from _walk(maybe_signature(signature.body, app=app), app, applied)
        return
    if isinstance(signature, (group, _chain)):
        if isinstance(signature, group) and signature.id is not None:
            yield Unreachable(_request(signature), chord_part=False)
        yield from _members(signature.tasks, app, applied)
        return
    if signature.id is not None:
        yield Unreachable(_request(signature), chord_part=applied and "chord" in signature.options)


def _members(tasks: Iterable[Any] | Signature, app: Any, applied: bool) -> Iterator[Unreachable]:
    if isinstance(tasks, Signature):
        yield from _walk(tasks, app, applied)
        return
    for task in tasks:
        yield from _walk(maybe_signature(task, app=app), app, applied)


def _request(signature: Signature) -> Context:
    """The request the task would have had: enough for its stored result and its chord."""
    request = Context(dict(signature))
    request.update(signature.options)
    request.id = signature.id
    request.group = signature.options.get("group_id")
    return request
