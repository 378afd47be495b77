"""Every worker pool users run besides prefork (the behaviour suite's pool on
every storage): threads, solo and gevent, each with a real worker, with the
behaviour suite's core cases: a result, a group join, a chord, a join inside
a task, and a result over the size limit. (On this machine gevent also passed
on GCS and Azure: `SETUPS` takes any pool and store.)

Under gevent's monkey-patching the backend's batch-read threads are
greenlets and its locks gevent's: a join must neither deadlock (it returns)
nor serialise (the counting proxy sees several reads in flight at once).
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from celery import Celery, chord, group, states
from celery.result import AsyncResult

from support.processes import Worker
from support.stores import STORES

pytestmark = pytest.mark.e2e

#: prefork runs the whole behaviour suite on every storage (test_behaviour.py);
#: threads share one backend between threads, so on a network store; gevent on both.
SETUPS = [("threads", "s3"), ("solo", "filesystem"), ("gevent", "filesystem"), ("gevent", "s3")]
#: The workers' result size limit, so a task can pass it cheaply.
MAX_SIZE = 100_000


@pytest.fixture(scope="module", params=SETUPS, ids=lambda p: f"{p[0]}-{p[1]}")
def running(request, redis_url, tmp_path_factory) -> Iterator[tuple[Celery, object]]:
    pool, storage = request.param
    if pool == "gevent":
        pytest.importorskip("gevent")
    with pytest.MonkeyPatch.context() as monkeypatch:
        if storage == "filesystem":
            config = {"location": str(tmp_path_factory.mktemp("results"))}
            store = None
        else:
            store = STORES[storage](request.getfixturevalue("emulators")[storage], monkeypatch)
            config = store.worker_config()
        env = {
            "TEST_BROKER_URL": redis_url,
            "TEST_RESULT_STORAGE": storage,
            "TEST_RESULT_STORAGE_CONFIG": json.dumps(config),
            "TEST_RESULT_STORAGE_MAX_SIZE": str(MAX_SIZE),
        }
        worker = Worker(env, tmp_path_factory.mktemp("worker") / "worker.log", concurrency=4, pool=pool)
        client = Celery(f"pools-{pool}-{storage}", set_as_current=False)
        client.conf.update(
            broker_url=redis_url,
            result_backend="django-storage",
            result_storage=storage,
            result_storage_config=store.config if store else config,
            accept_content=["json"],
        )
        try:
            yield client, store
        finally:
            client.close()
            worker.stop()
        output = worker.output()
        assert "Unrecoverable error" not in output, output
        assert "WorkerLostError" not in output, output  # no pool process died


def sig(app: Celery, name: str, *args):
    return app.signature(f"tests.{name}", args=args)


def test_a_result(running):
    app, _store = running
    assert sig(app, "add", 2, 3).delay().get(timeout=30) == 5


def test_a_group_join(running):
    app, _store = running
    numbers = group(sig(app, "add", i, i) for i in range(20)).apply_async()
    assert numbers.join_native(timeout=60) == [2 * i for i in range(20)]


def test_a_chord(running):
    app, _store = running
    summed = chord(sig(app, "add", i, 1) for i in range(8))(sig(app, "total"))
    assert summed.get(timeout=60) == sum(i + 1 for i in range(8))


def test_a_join_inside_a_task_reads_in_parallel(running):
    app, store = running
    ids = [sig(app, "add", i, 0).delay().id for i in range(16)]
    assert [AsyncResult(i, app=app).get(timeout=30) for i in ids] == list(range(16))
    if store is None:
        assert sig(app, "join", ids).delay().get(timeout=30) == list(range(16))
        return
    proxy = store.proxy
    proxy.delay = 0.05  # each read takes a moment, so parallel reads overlap
    try:
        proxy.reset()
        assert sig(app, "join", ids).delay().get(timeout=30) == list(range(16))
    finally:
        proxy.delay = 0.0
    # the worker's 16 reads, the client's polling of one result: more than one at once
    assert proxy.peak_in_flight >= 4, proxy.peak_in_flight


def test_a_result_over_the_size_limit_ends_the_task_as_failure(running):
    app, _store = running
    too_big = sig(app, "text", MAX_SIZE * 2).delay()
    with pytest.raises(Exception, match=f"{MAX_SIZE}-byte limit") as raised:
        too_big.get(timeout=30)
    assert type(raised.value).__name__ == "ResultTooLarge"
    assert too_big.state == states.FAILURE
    assert sig(app, "add", 1, 1).delay().get(timeout=30) == 2  # the worker lives on
