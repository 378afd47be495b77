"""The Celery result contract, the same suite on every storage.

Each storage gets one real `celery worker` (prefork, 4 processes) on a real
Redis broker for the whole module: the filesystem provider, the generic
adapter (Celery's chord_unlock polling) on a folder storage, on django-storages'
FTPStorage (a pyftpdlib server) and SFTPStorage (an asyncssh server), and on a
minimal Storage, and every object store of support.stores (S3 on moto, GCS on
fake-gcs-server, Azure on Azurite).
Chord callbacks append a line to a file: the file proves each callback ran
exactly once.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from celery import Celery, chain, chord, group, states
from celery.app.task import Context
from celery.exceptions import ChordError
from celery.exceptions import TimeoutError as ResultTimeout
from celery.result import AsyncResult, GroupResult, ResultSet

from support.file_servers import PASSWORD
from support.processes import Worker
from support.setups import STORAGES, Setup, storage_setup

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module", params=STORAGES)
def setup(request, tmp_path_factory) -> Iterator[Setup]:
    folder = tmp_path_factory.mktemp("results")
    with pytest.MonkeyPatch.context() as monkeypatch:
        yield storage_setup(request, request.param, folder, monkeypatch)


@pytest.fixture(scope="module")
def worker(setup, redis_url, tmp_path_factory) -> Iterator[Worker]:
    env = {
        "TEST_BROKER_URL": redis_url,
        "TEST_RESULT_STORAGE": setup.storage,
        "TEST_RESULT_STORAGE_CONFIG": json.dumps(setup.config),
    }
    running = Worker(env, tmp_path_factory.mktemp("worker") / "worker.log", concurrency=4)
    yield running
    running.stop()
    output = running.output()
    assert "Unrecoverable error" not in output, output
    assert PASSWORD not in output  # the FTP and SFTP servers' password


@pytest.fixture(scope="module")
def app(setup, worker, redis_url) -> Iterator[Celery]:
    client = Celery(f"behaviour-{setup.name}", set_as_current=False)
    client.conf.update(
        broker_url=redis_url,
        result_backend="django-storage",
        result_storage=setup.storage,
        result_storage_config=setup.config,
        result_extended=True,
        accept_content=["json"],
    )
    yield client
    client.close()


@pytest.fixture
def lines(tmp_path) -> Path:
    return tmp_path / "callback-lines"


def read_lines(path: Path) -> list:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def sig(app: Celery, name: str, *args):
    return app.signature(f"tests.{name}", args=args)


def wait_for(condition, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.1)


# -- tasks -----------------------------------------------------------------------


def test_success_and_failure_with_traceback(app):
    assert sig(app, "add", 2, 3).delay().get(timeout=30) == 5
    failed = sig(app, "fail", "expected failure").delay()
    with pytest.raises(ValueError, match="expected failure"):
        failed.get(timeout=30)
    assert failed.state == states.FAILURE
    assert "ValueError: expected failure" in failed.traceback


def test_retries_end_in_success(app):
    result = sig(app, "retry_twice").delay()
    assert result.get(timeout=30) == 2
    assert app.backend.get_task_meta(result.id, cache=False)["retries"] == 2


def test_late_duplicates_in_other_worker_processes_never_overwrite_success(app):
    first = sig(app, "add", 2, 2).delay()
    assert first.get(timeout=30) == 4
    duplicates = group(sig(app, "late_duplicate", first.id) for _ in range(8)).apply_async()
    assert duplicates.get(timeout=60) == [first.id] * 8
    meta = app.backend.get_task_meta(first.id, cache=False)
    assert (meta["status"], meta["result"]) == (states.SUCCESS, 4)


def test_revoked_task(app):
    result = sig(app, "add", 1, 1).apply_async(countdown=2)
    result.revoke()
    wait_for(lambda: AsyncResult(result.id, app=app).state == states.REVOKED, 30)


def test_extended_fields(app, setup):
    result = sig(app, "add", 4, 5).apply_async(kwargs={})
    assert result.get(timeout=30) == 9
    meta = app.backend.get_task_meta(result.id, cache=False)
    assert (meta["name"], meta["args"], meta["kwargs"]) == ("tests.add", [4, 5], {})
    assert meta["worker"].startswith("worker-")
    assert meta["queue"] == "celery"
    assert meta["date_done"] is not None


def test_forget_and_result_exists(app):
    result = sig(app, "add", 1, 2).delay()
    assert result.get(timeout=30) == 3
    assert app.backend.task_result_exists(result.id)
    result.forget()
    assert AsyncResult(result.id, app=app).state == states.PENDING
    assert not app.backend.task_result_exists(result.id)
    assert not app.backend.task_result_exists(str(uuid.uuid4()))


def test_group_save_restore_delete(app):
    saved = group(sig(app, "add", i, i) for i in range(5)).apply_async()
    saved.save()
    restored = GroupResult.restore(saved.id, app=app)
    assert restored.get(timeout=30) == [0, 2, 4, 6, 8]
    restored.delete()
    assert GroupResult.restore(saved.id, app=app) is None


def test_result_sets_and_timeouts(app):
    numbers = ResultSet([sig(app, "add", i, 1).delay() for i in range(20)], app=app)
    assert numbers.get(timeout=30) == list(range(1, 21))
    assert numbers.join_native(timeout=30) == list(range(1, 21))
    slow = ResultSet([sig(app, "sleep", 3).delay()], app=app)
    with pytest.raises(ResultTimeout):
        slow.join_native(timeout=0.5)
    assert slow.join_native(timeout=30) == [3]


# -- chords --------------------------------------------------------------------


@pytest.mark.parametrize("size", [1, 10, 200])
def test_chord_of_n_header_tasks(app, lines, size):
    result = chord(sig(app, "add", i, 1) for i in range(size))(sig(app, "append_line", str(lines)))
    assert result.get(timeout=120) == [i + 1 for i in range(size)]
    assert read_lines(lines) == [[i + 1 for i in range(size)]]


def test_chord_bookkeeping_costs_at_most_four_requests_per_header_task(app, setup, lines):
    if setup.proxy is None:
        pytest.skip("a local folder makes no requests to count")
    size = 100
    header = [sig(app, "add", i, 1) for i in range(size)]
    callback = sig(app, "append_line", str(lines))
    callback.freeze()
    header_ids = [s.freeze().id for s in header]
    with setup.proxy.counting() as seen:
        chord(header)(callback)
        # a fresh handle: the chord's own would also poll every header result
        assert AsyncResult(callback.id, app=app).get(timeout=120) == [i + 1 for i in range(size)]

    def touches(request, task_id: str) -> bool:
        return task_id in request.path or task_id in request.query

    # leave out the client polling the callback and the callback's own result
    chord_requests = [r for r in seen if not touches(r, callback.id)]
    # and the one parallel read of the header results when the chord completes
    join_reads = [r for r in chord_requests if r.method == "GET" and any(touches(r, i) for i in header_ids)]
    assert len(join_reads) <= size + 4  # a lost race re-reads a result now and then
    per_task = (len(chord_requests) - size) / size
    print(f"{setup.name}: {per_task:.2f} requests per header task")
    assert per_task <= 4, f"{per_task:.2f} requests per header task"


def test_failed_header_reaches_the_callback(app, lines):
    result = chord([sig(app, "add", 1, 1), sig(app, "fail", "expected failure")])(
        sig(app, "append_line", str(lines))
    )
    # get() raises the failed header's own error when it sees it first
    with pytest.raises((ChordError, ValueError), match="expected failure"):
        result.get(timeout=60)
    callback = AsyncResult(result.id, app=app)
    wait_for(lambda: callback.state == states.FAILURE)
    assert isinstance(callback.result, ChordError)
    assert "expected failure" in str(callback.result)
    assert read_lines(lines) == []


def test_chord_inside_a_chain(app, lines):
    workflow = chain(
        sig(app, "add", 1, 1),
        chord([sig(app, "add", 1), sig(app, "add", 2)], sig(app, "total")),
        sig(app, "add", 100),
    )
    assert workflow.apply_async().get(timeout=60) == (2 + 1) + (2 + 2) + 100


def test_chain_inside_a_header(app, lines):
    header = [chain(sig(app, "add", 1, 1), sig(app, "add", 10)), sig(app, "add", 5, 5)]
    result = chord(header)(sig(app, "append_line", str(lines)))
    assert result.get(timeout=60) == [12, 10]
    assert read_lines(lines) == [[12, 10]]


def test_group_of_chords(app, lines):
    chords = group(chord([sig(app, "add", i, i), sig(app, "add", i, 1)], sig(app, "total")) for i in range(3))
    assert chords.apply_async().get(timeout=60) == [3 * i + 1 for i in range(3)]


def test_chord_of_chords(app, lines):
    inner = [chord([sig(app, "add", i, 0), sig(app, "add", i, 1)], sig(app, "total")) for i in range(3)]
    result = chord(inner)(sig(app, "append_line", str(lines)))
    assert result.get(timeout=90) == [2 * i + 1 for i in range(3)]
    assert read_lines(lines) == [[1, 3, 5]]


def test_empty_header(app, lines):
    result = chord([])(sig(app, "append_line", str(lines)))
    assert result.get(timeout=30) == []
    assert read_lines(lines) == [[]]


def test_a_redelivered_header_task_is_counted_once(app, lines):
    backend = app.backend
    group_id = str(uuid.uuid4())
    task_ids = [str(uuid.uuid4()) for _ in range(3)]
    callback = sig(app, "append_line", str(lines))
    callback.freeze()
    backend.apply_chord((group_id, [AsyncResult(task_id, app=app) for task_id in task_ids]), callback)
    backend.set_chord_size(group_id, 3)

    def finish(task_id: str) -> None:
        request = Context(id=task_id, group=group_id, chord=dict(callback), delivery_info={})
        backend.mark_as_done(task_id, 1, request=request)

    finish(task_ids[0])
    finish(task_ids[0])  # redelivered: counted once
    finish(task_ids[1])
    time.sleep(2)  # long enough for chord_unlock polling to have fired too early
    assert read_lines(lines) == []
    finish(task_ids[2])
    assert AsyncResult(callback.id, app=app).get(timeout=60) == [1, 1, 1]
    assert read_lines(lines) == [[1, 1, 1]]


def test_a_worker_killed_mid_chord_still_completes_exactly_once(app, lines, tmp_path):
    marker = str(tmp_path / "died-once")
    header = [sig(app, "add", i, 0) for i in range(6)] + [sig(app, "die_once", 100, marker)]
    result = chord(header)(sig(app, "append_line", str(lines)))
    assert result.get(timeout=120) == [0, 1, 2, 3, 4, 5, 100]
    assert os.path.exists(marker)
    assert read_lines(lines) == [[0, 1, 2, 3, 4, 5, 100]]


def test_native_chords_send_no_chord_unlock(app, setup, worker):
    if setup.generic:
        assert not app.backend.native_chords  # it polls, by design
        return
    assert app.backend.native_chords
    assert "celery.chord_unlock" not in worker.output()
