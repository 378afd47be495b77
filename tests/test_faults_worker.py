"""The short versions of the soak (bench/soak.py), with a real worker: a
hundred tasks while the proxy injects every kind of fault, and tasks whose
pool process is SIGKILLed at random moments while it stores the result.
A second reader watches the results as they are written: no state ever goes
back, no object ever reads as a partial result, nothing is lost."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from celery import Celery, group

from support.processes import Worker
from support.soak import Watcher, client_app, inject_mix, lost

pytestmark = pytest.mark.e2e

TASKS = 100
RATE = 0.10  # of the result requests, shared by the kinds


def start(env: dict, log: Path) -> Worker:
    return Worker(env, log, concurrency=4)


def client(redis_url: str, storage: str, config: dict, **conf) -> Celery:
    return client_app(f"faults-{storage}", redis_url, storage, config, **conf)


def result_objects(store):
    return lambda request: any("celery-task-meta-" in key for key in store.keys(request))


@pytest.mark.parametrize("storage", ["s3", "gcs", "azure"])
def test_every_fault_kind_loses_nothing_and_no_state_goes_back(storage, fresh_store, redis_url, tmp_path):
    store = fresh_store(storage)
    worker_config = store.worker_config()
    if storage == "azure":  # as docs/operating.md#rate-limits says: Celery's retries, not the SDK's 15 s
        worker_config = store.without_client_retries()
    env = {
        "TEST_BROKER_URL": redis_url,
        "TEST_RESULT_STORAGE": storage,
        "TEST_RESULT_STORAGE_CONFIG": json.dumps(worker_config),
        "TEST_RESULT_BACKEND_ALWAYS_RETRY": "1",
        "TEST_TASK_TRACK_STARTED": "1",
    }
    worker = start(env, tmp_path / "worker.log")
    app = client(redis_url, storage, store.without_client_retries(), result_backend_always_retry=True)
    add = app.signature("tests.add")
    calls = [add.clone((i, i)) for i in range(TASKS)]
    ids = [call.freeze().id for call in calls]
    watcher = Watcher(app, ids)  # stopped in `finally`: a reader left running would skew later tests' counts
    try:
        counters = inject_mix(store, RATE, seed=15, only=result_objects(store))
        watcher.start()
        results = group(calls).apply_async()
        assert results.join_native(timeout=120) == [2 * i for i in range(TASKS)]
        watcher.stop()
        store.proxy.reset()  # no more faults: read what is stored
        assert lost(app, ((task_id, 2 * i) for i, task_id in enumerate(ids))) == []
        injected = {kind: counter.fired for kind, counter in counters.items()}
        print(f"faults injected: {injected}; watcher: {watcher.reads} reads, {watcher.read_errors} failed")
        assert all(count >= 1 for count in injected.values()), injected
        assert watcher.backwards == [] and watcher.invalid == []
        assert len(watcher.seen) > TASKS // 2
    finally:
        watcher.stop()
        app.close()
        worker.stop()
    assert "Unrecoverable error" not in worker.output()


# the folder, where a killed write leaves debris; an object store, which applies
# a whole request or none of it, and whose SDK is mid-request when killed
@pytest.mark.parametrize("storage", ["filesystem", "s3", "gcs", "azure"])
def test_a_worker_killed_while_storing_leaves_nothing_partial(storage, fresh_store, redis_url, tmp_path):
    markers = tmp_path / "markers"
    markers.mkdir()
    if storage == "filesystem":
        folder = tmp_path / "results"
        config = worker_config = {"location": str(folder)}
        store = None
    else:
        store = fresh_store(storage)
        config, worker_config = store.config, store.worker_config()
    env = {
        "TEST_BROKER_URL": redis_url,
        "TEST_RESULT_STORAGE": storage,
        "TEST_RESULT_STORAGE_CONFIG": json.dumps(worker_config),
        "TEST_TASK_TRACK_STARTED": "1",
    }
    worker = start(env, tmp_path / "worker.log")
    app = client(redis_url, storage, config, result_expires=86400)
    size = 200_000  # a write that takes a moment
    dying = app.signature("tests.die_while_storing")
    calls = [dying.clone((size, str(markers))) for _ in range(8)]
    ids = [call.freeze().id for call in calls]
    watcher = Watcher(app, ids)
    try:
        watcher.start()
        results = group(calls).apply_async()
        assert results.join_native(timeout=180) == ["x" * size] * len(calls)
        watcher.stop()
        assert watcher.backwards == [] and watcher.invalid == []
        assert lost(app, ((task_id, "x" * size) for task_id in ids)) == []
        assert len(os.listdir(markers)) == len(calls)  # every first delivery armed its kill
        if store is None:  # the folder: what a killed write left, aged past cleanup's hour
            debris = [path for path in folder.iterdir() if path.name.startswith(".celery-tmp-")]
            past = time.time() - 2 * 3600
            for path in debris:
                os.utime(path, (past, past))
            report = app.backend.cleanup()
            print(f"{len(debris)} temporary files left by killed writes, removed by cleanup()")
            assert report.leftovers == len(debris)
            assert not any(path.name.startswith(".celery-tmp-") for path in folder.iterdir())
        else:  # an object store applies a whole request or none of it
            assert {name.rsplit("/", 1)[1] for name in store.names()} == {
                app.backend.get_key_for_task(task_id) for task_id in ids
            }
        kills = worker.output().count("signal 9 (SIGKILL)")
        print(f"{storage}: {kills} pool processes killed while running or storing")
        assert kills >= 1
    finally:
        watcher.stop()
        app.close()
        worker.stop()
