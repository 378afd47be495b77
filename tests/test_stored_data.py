"""What the storage returns is input too: an object under a result's name
that is not that task's result is an error naming the task, never a bare
KeyError/TypeError from deep in Celery, and never its payload."""

from __future__ import annotations

import json
import pickle

import pytest
from celery import states
from celery.result import AsyncResult, GroupResult
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from django_storage_celery_results.adapters import Content
from django_storage_celery_results.exceptions import InvalidStoredResult
from support.stores import STORES

TASK = "0b7e6f2a-4b1b-4d8a-9a3c-3f0a5a6c1d2e"
SECRET = "payload-that-must-not-be-shown"

STORAGES = ["fs_app", "generic_app", *(f"{preset}_app" for preset in STORES)]


@pytest.fixture
def generic_app(make_app, results_dir):
    return make_app(
        result_storage="filesystem",
        result_storage_config={"location": str(results_dir)},
        result_storage_adapter="generic",
    )


@pytest.fixture(params=STORAGES)
def app(request):
    return request.getfixturevalue(request.param)


def plant(app, data: bytes, task_id: str = TASK, content: Content = Content()) -> None:
    backend = app.backend
    backend.adapter.put(backend.get_key_for_task(task_id), data, content=content)


NOT_RESULTS = {
    "a list": json.dumps([1, 2, 3, SECRET]).encode(),
    "a string": json.dumps(SECRET).encode(),
    "a number": b"42",
    "a dict without a status": json.dumps({"result": SECRET, "task_id": TASK}).encode(),
    "a status that is not text": json.dumps({"status": 3, "result": SECRET, "task_id": TASK}).encode(),
    "a dict without a result": json.dumps({"status": "SUCCESS", "task_id": TASK}).encode(),
    "another task's result": json.dumps(
        {"status": "SUCCESS", "result": SECRET, "task_id": "another-task"}
    ).encode(),
    "any status, no task id": json.dumps({"status": "HACKED", "result": SECRET}).encode(),
    "truncated JSON": json.dumps({"status": "SUCCESS", "result": SECRET, "task_id": TASK}).encode()[:-7],
    "not JSON": b"\x89PNG\r\n\x1a\n" + SECRET.encode(),
    "not UTF-8": b"\xff\xfe" + SECRET.encode("utf-16-le"),
    "a failure whose exception is garbage": json.dumps(
        {"status": "FAILURE", "result": {"exc_type": 5, "exc_message": SECRET}, "task_id": TASK}
    ).encode(),
}


@pytest.mark.parametrize("what", list(NOT_RESULTS))
def test_an_object_that_is_not_the_result_is_an_error_naming_the_task(app, what):
    plant(app, NOT_RESULTS[what])
    with pytest.raises(InvalidStoredResult) as raised:
        app.backend.get_task_meta(TASK, cache=False)
    message = str(raised.value)
    assert TASK in message
    assert app.backend.get_key_for_task(TASK) in message
    assert SECRET not in message
    assert raised.value.task_id == TASK
    # the same through a result's get() and a batch read (a group join)
    with pytest.raises(InvalidStoredResult, match=TASK):
        AsyncResult(TASK, app=app).get(timeout=1)
    with pytest.raises(InvalidStoredResult, match=TASK):
        list(app.backend.get_many([TASK], timeout=1))


def test_an_unknown_content_encoding_is_an_error_naming_the_object(app):
    if not app.backend.adapter.content_labels:
        pytest.skip("the storage keeps no content labels")
    plant(app, b"x", content=Content("application/json", "compress"))
    with pytest.raises(InvalidStoredResult, match=app.backend.get_key_for_task(TASK)):
        app.backend.get_task_meta(TASK, cache=False)


@pytest.mark.parametrize("what", ["a list", "a dict without a status", "truncated JSON"])
def test_the_tasks_own_write_replaces_an_object_that_is_not_its_result(app, what):
    plant(app, NOT_RESULTS[what])
    app.backend.mark_as_started(TASK)
    app.backend.mark_as_done(TASK, 7)
    assert AsyncResult(TASK, app=app).get(timeout=1) == 7


def test_a_real_result_with_a_custom_state_is_still_read(app):
    app.backend.store_result(TASK, {"done": 3, "total": 5}, "PROGRESS")
    meta = app.backend.get_task_meta(TASK, cache=False)
    assert (meta["status"], meta["result"]) == ("PROGRESS", {"done": 3, "total": 5})


def test_an_object_under_a_groups_name_that_is_not_a_group_is_an_error_naming_it(app):
    backend = app.backend
    backend.adapter.put(backend.get_key_for_group("g-1"), json.dumps([SECRET]).encode())
    with pytest.raises(InvalidStoredResult) as raised:
        GroupResult.restore("g-1", app=app, backend=backend)
    assert "g-1" in str(raised.value)
    assert SECRET not in str(raised.value)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    data=st.one_of(
        st.binary(max_size=200),
        st.builds(
            lambda v: json.dumps(v).encode(),
            st.recursive(
                st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                lambda children: (
                    st.lists(children, max_size=4)
                    | st.dictionaries(
                        st.sampled_from(["status", "result", "task_id", "traceback", "children", "x"]),
                        children,
                        max_size=5,
                    )
                ),
                max_leaves=10,
            ),
        ),
    )
)
def test_any_stored_bytes_read_as_a_result_or_a_clear_error(fs_app, data):
    plant(fs_app, data)
    try:
        meta = fs_app.backend.get_task_meta(TASK, cache=False)
    except InvalidStoredResult as exc:
        assert TASK in str(exc)
    else:
        assert isinstance(meta, dict) and isinstance(meta["status"], str)


def test_pickled_results_are_checked_too(make_app, results_dir):
    app = make_app(
        result_storage="filesystem",
        result_storage_config={"location": str(results_dir)},
        result_serializer="pickle",
    )
    plant(app, pickle.dumps({"no": "status"}))
    with pytest.raises(InvalidStoredResult, match=TASK):
        app.backend.get_task_meta(TASK, cache=False)
    app.backend.mark_as_done(TASK, {"ok": 1})
    assert app.backend.get_task_meta(TASK, cache=False)["status"] == states.SUCCESS


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(task_id=st.text(min_size=1, max_size=60))
def test_any_id_round_trips_inside_the_location(fs_app, results_dir, task_id):
    backend = fs_app.backend
    assert backend.get_task_meta(task_id, cache=False)["status"] == states.PENDING
    backend.mark_as_done(task_id, "stored")
    assert backend.get_task_meta(task_id, cache=False)["result"] == "stored"
    assert all(results_dir in path.parents for path in results_dir.parent.rglob("*") if path.is_file())
    backend.forget(task_id)
