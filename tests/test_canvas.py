"""The tasks a failure leaves unable to run (canvas.py), and the backend's
failure handling that uses them, driven as a worker would, on the
filesystem provider (a real folder). The same behaviour with real workers,
against Celery's Redis backend: test_failing_canvases.py."""

from __future__ import annotations

import json
import uuid

import pytest
from celery import chain, chord, group, states
from celery.app.task import Context
from celery.exceptions import ChordError

from django_storage_celery_results.canvas import unreachable


def sig(app, name, *args):
    return app.signature(f"tests.{name}", args=args)


def as_sent(*signatures):
    """A request's remaining chain as the worker receives it: JSON dicts."""
    return json.loads(json.dumps([dict(s) for s in signatures]))


def found(app, chain_data):
    return [(task.request.id, task.chord_part) for task in unreachable(chain_data, app)]


def test_a_group_later_in_the_chain_yields_its_id_and_every_member(fs_app):
    later = group(sig(fs_app, "add", 1), sig(fs_app, "add", 2))
    later.freeze()
    members = [task.id for task in later.tasks]
    assert found(fs_app, as_sent(later)) == [(later.id, False), *((m, False) for m in members)]
    request = next(iter(unreachable(as_sent(later), fs_app))).request
    assert request.group is None


def test_a_chord_later_in_the_chain_was_never_applied_its_header_counts_for_nothing(fs_app):
    later = chord([sig(fs_app, "add", 1), sig(fs_app, "add", 2)], sig(fs_app, "total"))
    body = later.freeze()
    header = [task.id for task in later.tasks.tasks]
    assert found(fs_app, as_sent(later)) == [*((h, False) for h in header), (body.id, False)]


def test_a_task_of_an_applied_chords_header_counts_as_its_part(fs_app):
    last = sig(fs_app, "add", 1)
    last.freeze(group_id="outer-group", chord=sig(fs_app, "total"))
    nested = chain(sig(fs_app, "add", 2), group(sig(fs_app, "add", 3)))
    nested.freeze()
    found_ids = found(fs_app, as_sent(nested, last))
    assert found_ids[-1] == (last.id, True)
    assert [part for _, part in found_ids[:-1]] == [False] * (len(found_ids) - 1)
    assert next(t for t in unreachable(as_sent(last), fs_app)).request.group == "outer-group"


@pytest.mark.parametrize("placeholder", [None, 42, []])
def test_no_chain_yields_nothing(fs_app, placeholder):
    assert found(fs_app, placeholder) == []


def test_a_failure_marks_the_group_after_it_failed(fs_app):
    backend = fs_app.backend
    later = group(sig(fs_app, "add", 1), sig(fs_app, "add", 2))
    later.freeze()
    failed_id = str(uuid.uuid4())
    request = Context(id=failed_id, chain=as_sent(later), errbacks=None, delivery_info={})
    backend.mark_as_failure(failed_id, ValueError(2), request=request)
    for task in later.tasks:
        meta = backend.get_task_meta(task.id, cache=False)
        assert meta["status"] == states.FAILURE
        assert repr(meta["result"]) == "ValueError(2)"
    assert fs_app.GroupResult(later.id, [fs_app.AsyncResult(t.id) for t in later.tasks]).ready()


def test_a_failed_task_in_a_header_chain_completes_the_chord(fs_app):
    """The chain's last task is the chord's part: marked failed, it is counted,
    and the callback fails with a ChordError naming it."""
    backend = fs_app.backend
    group_id = str(uuid.uuid4())
    callback = sig(fs_app, "total")
    callback.freeze()
    last = sig(fs_app, "add", 1)
    last.freeze(group_id=group_id, chord=callback)
    backend.apply_chord((group_id, [fs_app.AsyncResult(last.id)]), callback)
    head_id = str(uuid.uuid4())
    request = Context(id=head_id, chain=as_sent(last), errbacks=None, delivery_info={})
    backend.mark_as_failure(head_id, ValueError("boom"), request=request)
    meta = backend.get_task_meta(callback.id, cache=False)
    assert meta["status"] == states.FAILURE
    assert isinstance(meta["result"], ChordError)
    assert str(meta["result"]) == f"Dependency {last.id} raised ValueError('boom')"


def test_a_chain_callback_that_cannot_run_is_failed_whole(fs_app):
    backend = fs_app.backend
    body = chain(sig(fs_app, "add", 1), sig(fs_app, "add", 2))
    body.freeze(str(uuid.uuid4()))  # with the callback's id, as a chord freezes its body
    first, last = (task.id for task in body.tasks)
    try:
        raise ChordError("Dependency x raised ValueError()")
    except ChordError as exc:  # Celery calls it handling the error
        backend.chord_error_from_stack(body, exc)
    for task_id in (first, last):
        meta = backend.get_task_meta(task_id, cache=False)
        assert (meta["status"], str(meta["result"])) == (states.FAILURE, "Dependency x raised ValueError()")


def test_wait_for_checks_the_parents_once_more_after_the_result_is_ready(fs_app):
    backend = fs_app.backend
    task_id = str(uuid.uuid4())
    backend.mark_as_done(task_id, 5)
    checks = []
    assert backend.wait_for(task_id, timeout=1, on_interval=lambda: checks.append(1))["result"] == 5
    assert checks == [1]
    assert backend.wait_for(task_id, timeout=1)["result"] == 5  # no parents: nothing else read
