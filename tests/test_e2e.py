"""A real `celery worker` (prefork, 2 processes) with a real Redis broker, with the
binary pickle serializer, on every storage (the plain folder included); the
whole result contract runs in test_behaviour.py."""

from __future__ import annotations

import json

import pytest
from celery import chord, group, states
from celery.result import AsyncResult

from support.stores import STORES

pytestmark = pytest.mark.e2e

FOLDER_STORAGES = {
    "filesystem-provider": "filesystem",
    "generic-adapter": "support.storages.ThirdPartyFolderStorage",
    "generic-plain-folder": "support.storages.PlainFolderStorage",
}


def storage_settings(request, name: str) -> tuple[str, dict]:
    """CELERY_RESULT_STORAGE and its config for one storage under test."""
    if name in FOLDER_STORAGES:
        return FOLDER_STORAGES[name], {"location": str(request.getfixturevalue("results_dir"))}
    # an object store of support.stores; the environment its client needs is
    # set for this test, and the worker inherits it
    store = request.getfixturevalue("fresh_store")(name.removesuffix("-provider"))
    return store.preset, store.worker_config()


@pytest.fixture(
    params=[
        (storage, serializer)
        for storage in [*FOLDER_STORAGES, *(f"{preset}-provider" for preset in STORES)]
        # json runs in test_behaviour.py on every provider storage
        for serializer in ("pickle",)
    ],
    ids=lambda p: f"{p[0]}-{p[1]}",
)
def running(request, redis_url, start_worker, make_app):
    storage_name, serializer = request.param
    storage, config = storage_settings(request, storage_name)
    worker = start_worker(
        broker_url=redis_url,
        result_storage=storage,
        result_storage_config=json.dumps(config),
        result_serializer=serializer,
    )
    client = make_app(
        broker_url=redis_url,
        result_storage=storage,
        result_storage_config=config,
        result_serializer=serializer,
        task_serializer=serializer,
        result_extended=True,
    )
    yield client
    output = worker.output()
    # expected task failures log tracebacks; none may pass through our code
    assert "/django_storage_celery_results" not in output, output
    assert "Unrecoverable error" not in output, output
    if client.backend.native_chords:  # chords counted in storage, never by polling
        assert "celery.chord_unlock" not in output, output


def stored(app, task_id: str) -> bool:
    backend = app.backend
    return backend.adapter.read(backend.get_key_for_task(task_id)) is not None


def test_tasks_groups_chords_failure_and_forget(running):
    app = running
    add, total, fail = (app.signature(name) for name in ("tests.add", "tests.total", "tests.fail"))

    result = add.clone((2, 3)).delay()
    assert result.get(timeout=30) == 5
    assert result.state == states.SUCCESS
    assert stored(app, result.id)
    assert app.backend.get_task_meta(result.id, cache=False)["name"] == "tests.add"

    failed = fail.clone(("expected failure",)).delay()
    with pytest.raises(ValueError, match="expected failure"):
        failed.get(timeout=30)
    assert failed.state == states.FAILURE
    assert "ValueError" in failed.traceback

    numbers = group(add.clone((i, i)) for i in range(10)).apply_async()
    assert numbers.join_native(timeout=30) == [2 * i for i in range(10)]
    numbers.save()
    assert app.GroupResult.restore(numbers.id).get(timeout=30) == [2 * i for i in range(10)]

    summed = chord(add.clone((i, 1)) for i in range(6))(total.clone())
    assert summed.get(timeout=60) == sum(i + 1 for i in range(6))

    result.forget()
    assert AsyncResult(result.id, app=app).state == states.PENDING
    assert not stored(app, result.id)
    assert all(
        item.name.startswith(("celery-", "chord-", ".celery-tmp-")) for item in app.backend.adapter.list()
    )
