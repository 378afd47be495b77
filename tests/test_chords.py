"""Native chords: header tasks recorded as a set with conditional writes.

Driven through the backend as a worker would (mark_as_done / mark_as_failure
with the header task's request), on the filesystem provider and on S3; the
callback runs eagerly in-process and appends a line to a file, so the file
proves it ran exactly once. End-to-end chords with a real worker are in
test_e2e.py.
"""

from __future__ import annotations

import base64
import threading
from collections import Counter

import pytest
from celery import signals, states
from celery.app.task import Context
from celery.exceptions import ChordError

from django_storage_celery_results import chords
from support.chords import callback_lines, finish, start_chord
from support.faults import Fault
from support.stores.azure import calls as azure_calls
from support.stores.s3 import calls


def test_the_callback_runs_once_when_the_last_header_task_finishes(chord_app):
    group_id, task_ids, callback = start_chord(chord_app, 10)
    for number, task_id in enumerate(task_ids):
        assert callback_lines(chord_app) == []
        finish(chord_app, group_id, task_id, callback, number)
    assert callback_lines(chord_app) == [str(sum(range(10)))]
    assert chord_app.AsyncResult(callback.id).get(timeout=5) == sum(range(10))
    backend = chord_app.backend
    assert backend.restore_group(group_id, cache=False) is None  # removed once the chord completed
    assert backend.adapter.read(backend.get_key_for_chord(group_id)) is None


def test_a_redelivered_header_task_is_counted_once(chord_app):
    group_id, task_ids, callback = start_chord(chord_app, 3)
    finish(chord_app, group_id, task_ids[0], callback)
    finish(chord_app, group_id, task_ids[0], callback)  # redelivered (acks_late, lost worker)
    finish(chord_app, group_id, task_ids[1], callback)
    assert callback_lines(chord_app) == []  # two distinct of three: not yet
    finish(chord_app, group_id, task_ids[2], callback)
    finish(chord_app, group_id, task_ids[2], callback)
    assert callback_lines(chord_app) == ["3"]


def test_racing_workers_fire_the_callback_exactly_once(chord_app):
    group_id, task_ids, callback = start_chord(chord_app, 40)
    batches = [task_ids[i::8] for i in range(8)]
    errors: list[BaseException] = []

    def work(batch: list[str]) -> None:
        try:
            for task_id in batch:
                finish(chord_app, group_id, task_id, callback)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(batch,)) for batch in batches]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert callback_lines(chord_app) == ["40"]


def test_a_failed_header_task_fails_the_callback_with_chord_error(chord_app):
    group_id, task_ids, callback = start_chord(chord_app, 2)
    finish(chord_app, group_id, task_ids[0], callback)
    request = Context(id=task_ids[1], group=group_id, chord=dict(callback), delivery_info={})
    chord_app.backend.mark_as_failure(task_ids[1], ValueError("expected failure"), request=request)
    assert callback_lines(chord_app) == []
    failed = chord_app.AsyncResult(callback.id)
    assert failed.state == states.FAILURE
    with pytest.raises(
        ChordError, match=rf"Dependency {task_ids[1]} raised ValueError\('expected failure'\)"
    ):
        failed.get(timeout=5)


def test_no_chord_unlock_task_is_sent(make_app, tmp_path):
    published: list[str] = []

    def record(sender=None, **kwargs):
        published.append(sender)

    signals.before_task_publish.connect(record, weak=False)
    try:
        native = make_app(
            result_storage="filesystem", result_storage_config={"location": str(tmp_path / "a")}
        )
        start_chord(native, 2)
        assert "celery.chord_unlock" not in published
        polling = make_app(
            result_storage="support.storages.ThirdPartyFolderStorage",
            result_storage_config={"location": str(tmp_path / "b")},
        )
        start_chord(polling, 2)  # the generic adapter cannot write conditionally
        assert "celery.chord_unlock" in published
    finally:
        signals.before_task_publish.disconnect(record)


def summing_app(make_app, storage: str, config: dict):
    """An eager app on the storage whose chord callback sums the header's values."""
    app = make_app(
        result_storage=storage,
        result_storage_config=config,
        task_always_eager=True,
        task_store_eager_result=True,
    )

    @app.task(name="tests.record_callback", shared=False)
    def record_callback(values):
        return sum(values)

    return app


def test_s3_requests_per_header_task(make_app, s3_config, s3_proxy):
    app = summing_app(make_app, "s3", s3_config)
    group_id, task_ids, callback = start_chord(app, 20)
    per_task = []
    for position, task_id in enumerate(task_ids[:-1]):
        with s3_proxy.counting() as seen:
            finish(app, group_id, task_id, callback, position=position)
        per_task.append(len(seen))
    with s3_proxy.counting() as last:
        finish(app, group_id, task_ids[-1], callback, position=19)
    # its result, its marker, one listing of its sub-bucket of 10; the one that
    # fills the first sub-bucket lists the bucket too (not full yet)
    assert per_task == [3] * 9 + [4] + [3] * 9
    # the last one (its result, its marker, a listing of its sub-bucket and
    # one of its bucket) also creates the "fired" marker, reads the group and
    # the 20 header results, sends the callback (eager here: its result is
    # one more create) and removes the group and the markers (a listing, one batch)
    expected = {"PUT if-none-match=*": 3, "PUT": 1, "GET?list-type": 3, "GET": 21}
    expected.update({"DELETE": 1, "POST?delete": 1})
    assert Counter(calls(last)) == Counter(expected)
    assert app.AsyncResult(callback.id).get(timeout=5) == 20


def test_azure_requests_per_header_task(make_app, azure_config, azure_proxy):
    app = summing_app(make_app, "azure", azure_config)
    with azure_proxy.counting() as applied:
        group_id, task_ids, callback = start_chord(app, 20)
    # the group record, and the bucket's append blob (created empty)
    assert Counter(azure_calls(applied)) == Counter({"PUT": 2})
    per_task = []
    for position, task_id in enumerate(task_ids[:-1]):
        with azure_proxy.counting() as seen:
            finish(app, group_id, task_id, callback, position=position)
        per_task.append(azure_calls(seen))
    # its result and one append: no marker, no listing
    assert per_task == [["PUT if-none-match=*", "PUT?comp=appendblock"]] * 19
    with azure_proxy.counting() as last:
        finish(app, group_id, task_ids[-1], callback, position=19)
    # the last one's append reaches the bucket's count: it reads the lines
    # (they carry the 20 header results, so the join reads none on its own
    # and not the lines again), creates "fired", reads the group, sends the
    # callback (eager: one more create) and removes the group and the
    # bookkeeping (a listing, one batch)
    expected = {"PUT if-none-match=*": 3, "PUT?comp=appendblock": 1, "GET": 2}
    expected.update({"DELETE": 1, "GET?comp=list": 1, "POST?comp=batch": 1})
    assert Counter(azure_calls(last)) == Counter(expected)
    assert app.AsyncResult(callback.id).get(timeout=5) == 20


def test_a_chord_state_that_cannot_be_updated_fails_the_callback(
    make_app, s3_config, s3_proxy, tmp_path, monkeypatch
):
    monkeypatch.setattr(chords, "MAX_ROUNDS", 3)
    monkeypatch.setattr(chords, "BACKOFF_START", 0)
    app = make_app(
        result_storage="s3",
        result_storage_config=s3_config,
        task_always_eager=True,
        task_store_eager_result=True,
    )
    group_id, task_ids, callback = start_chord(app, 2)
    body = b"<?xml version='1.0'?><Error><Code>PreconditionFailed</Code><Message>x</Message></Error>"
    s3_proxy.inject(
        Fault(412, body, matches=lambda r: r.method == "PUT" and "/chord-unlock-" in r.path, times=3)
    )
    finish(app, group_id, task_ids[0], callback)
    failed = app.AsyncResult(callback.id)
    assert failed.state == states.FAILURE
    with pytest.raises(ChordError, match="cannot record a header task"):
        failed.get(timeout=5)


def test_chord_bookkeeping_lives_under_the_chord_name(chord_app):
    group_id, task_ids, callback = start_chord(chord_app, 2)
    finish(chord_app, group_id, task_ids[0], callback)
    backend = chord_app.backend
    chord_name = backend.get_key_for_chord(group_id)
    if backend.adapter.appends:  # Azure: the bucket's append blob, a line per finished task
        members = {item.name for item in backend.adapter.list(prefix=chord_name)}
        expect = f"{chord_name}~b0~.expect-2-of-2-in-1"
        assert members == {expect}
        # with the result it stored, for the join: one read per bucket, not one per task
        line = backend.adapter.read_appended(expect).decode()
        name, carried = line.removesuffix("\n").split(" ")
        assert name == f"+{task_ids[0]}"
        assert base64.b64decode(carried) == backend.get(backend.get_key_for_task(task_ids[0]))
    elif backend.adapter.prefix_listing:  # object stores: one marker per finished task
        members = {item.name for item in backend.adapter.list(prefix=chord_name)}
        # the bucket's expected count (written at apply), and the finished
        # task, which came without a position (request.group_index) and was
        # placed in sub-bucket 0 of bucket 0 by its place in the group record
        assert members == {
            f"{chord_name}~b0~.expect-2-of-2-in-1",
            f"{chord_name}~b0~0~{task_ids[0]}",
        }
    else:  # a local folder: the chord's state object and one per bucket of header tasks
        state = backend.decode(backend.get(chord_name))
        assert state == {"size": 2, "places": 2, "done": [], "buckets": 1, "full": [], "fired": False}
        assert backend.decode(backend.get(f"{chord_name}~b0")) == {"count": 2, "done": [task_ids[0]]}
    finish(chord_app, group_id, task_ids[1], callback)
    assert [item.name for item in backend.adapter.list(prefix=chord_name)] == []
