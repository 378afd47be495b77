"""What every object-store provider promises, run against each emulator behind the counting proxy.

Budgets are counted in one vocabulary for all stores: ``create`` (a
create-only write), ``update`` (a write matched against a version),
``write`` (unconditional), ``read`` and ``delete``; each provider's module
says how those look on its wire and tests what only it does.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

import pytest
from celery import states
from django.utils.module_loading import import_string

from django_storage_celery_results.adapters import Update
from django_storage_celery_results.exceptions import ImproperlyConfigured, VersionMismatch
from django_storage_celery_results.providers import registry
from tests.emulators import CountingProxy, Fault, Request
from tests.hostile import HOSTILE_IDS

PROVIDERS = ["s3", "gcs"]


@dataclass
class Store:
    preset: str
    config: dict
    proxy: CountingProxy
    #: The provider's wire description of requests, and its words in ours.
    wire: Callable[[list[Request]], list[str]]
    vocabulary: dict[str, str]
    #: The object keys a request touches.
    keys: Callable[[Request], list[str]]
    plant: Callable[[str, bytes], None]
    fetch: Callable[[str], bytes]
    #: Error answers: "unavailable", "throttled", "internal-error" for reads, "forbidden" for writes.
    faults: dict[str, Fault]
    #: The config with the client's own retries off (Celery's alone remain).
    without_client_retries: Callable[[], dict]
    pool_size: int

    def app(self, make_app, config: dict | None = None, **conf):
        return make_app(result_storage=self.preset, result_storage_config=config or self.config, **conf)

    def calls(self, requests: list[Request]) -> list[str]:
        return [self.vocabulary.get(call, call) for call in self.wire(requests)]


def s3_store(request, monkeypatch) -> Store:
    from tests.test_s3 import calls, no_sdk_retries, s3_error

    raw, bucket = request.getfixturevalue("s3_raw"), request.getfixturevalue("s3_bucket")
    config = request.getfixturevalue("s3_config")
    return Store(
        "s3",
        config,
        request.getfixturevalue("s3_proxy"),
        calls,
        {
            "PUT if-none-match": "create",
            "PUT if-match": "update",
            "PUT": "write",
            "GET": "read",
            "DELETE": "delete",
        },
        keys=lambda r: (
            [unquote(r.path.removeprefix(f"/{bucket}/"))] if r.path.startswith(f"/{bucket}/") else []
        ),
        plant=lambda key, data: raw.put_object(Bucket=bucket, Key=key, Body=data),
        fetch=lambda key: raw.get_object(Bucket=bucket, Key=key)["Body"].read(),
        faults={
            "unavailable": s3_error(503, "ServiceUnavailable", method="GET"),
            "throttled": s3_error(503, "SlowDown", method="GET"),
            "internal-error": s3_error(500, "InternalError", method="GET"),
            "forbidden": s3_error(403, "AccessDenied", method="PUT"),
        },
        without_client_retries=lambda: no_sdk_retries(config),
        pool_size=10,  # botocore's default connection pool
    )


def gcs_store(request, monkeypatch) -> Store:
    from django_storage_celery_results_gcs import GCSAdapter
    from tests.test_gcs import calls, gcs_error, object_names

    raw, bucket = request.getfixturevalue("gcs_raw"), request.getfixturevalue("gcs_bucket")
    config = request.getfixturevalue("gcs_config")

    def without_client_retries() -> dict:
        monkeypatch.setattr(GCSAdapter, "retry", None)
        return config

    return Store(
        "gcs",
        config,
        request.getfixturevalue("gcs_proxy"),
        calls,
        {
            "POST upload multipart ifGenerationMatch=0": "create",
            "POST upload multipart ifGenerationMatch=N": "update",
            "POST upload multipart": "write",
            "GET media": "read",
            "DELETE object": "delete",
        },
        keys=object_names,
        plant=lambda key, data: raw.bucket(bucket).blob(key).upload_from_string(data),
        fetch=lambda key: raw.bucket(bucket).blob(key).download_as_bytes(),
        faults={
            "unavailable": gcs_error(503, "backendError", method="GET"),
            "throttled": gcs_error(429, "rateLimitExceeded", method="GET"),
            "internal-error": gcs_error(500, "internalError", method="GET"),
            "forbidden": gcs_error(403, "forbidden", method="POST"),
        },
        without_client_retries=without_client_retries,
        pool_size=10,  # requests' connection pool per host
    )


@pytest.fixture(params=PROVIDERS)
def store(request, monkeypatch) -> Store:
    return {"s3": s3_store, "gcs": gcs_store}[request.param](request, monkeypatch)


# -- request budgets -----------------------------------------------------------


def test_a_new_result_is_one_create_only_write(store, make_app):
    app = store.app(make_app)
    with store.proxy.counting() as seen:
        app.backend.store_result("task-1", 42, states.SUCCESS)
    assert store.calls(seen) == ["create"]


def test_started_then_success_from_one_worker_is_two_writes(store, make_app):
    backend = store.app(make_app).backend
    with store.proxy.counting() as seen:
        backend.store_result("task-1", None, states.STARTED)
        backend.store_result("task-1", 42, states.SUCCESS)
    assert store.calls(seen) == ["create", "update"]
    assert backend.get_task_meta("task-1", cache=False)["result"] == 42


def test_success_after_another_process_wrote_started_is_three_requests(store, make_app):
    first, second = store.app(make_app).backend, store.app(make_app).backend
    first.store_result("task-1", None, states.STARTED)
    with store.proxy.counting() as seen:
        second.store_result("task-1", 42, states.SUCCESS)
    assert store.calls(seen) == ["create", "read", "update"]
    assert first.get_task_meta("task-1", cache=False)["status"] == states.SUCCESS


def test_a_late_duplicate_never_overwrites_success(store, make_app):
    first, late = store.app(make_app).backend, store.app(make_app).backend
    first.store_result("task-1", 42, states.SUCCESS)
    with store.proxy.counting() as seen:
        late.store_result("task-1", None, states.STARTED)
    assert store.calls(seen) == ["create", "read"]
    assert first.get_task_meta("task-1", cache=False)["result"] == 42


def test_read_is_one_request_and_missing_is_pending(store, make_app):
    backend = store.app(make_app).backend
    backend.store_result("task-1", 42, states.SUCCESS)
    with store.proxy.counting() as seen:
        assert backend.get_task_meta("task-1", cache=False)["result"] == 42
        assert backend.get_task_meta("never-stored", cache=False)["status"] == states.PENDING
    assert store.calls(seen) == ["read", "read"]


def test_forget_is_one_delete(store, make_app):
    backend = store.app(make_app).backend
    backend.store_result("task-1", 42, states.SUCCESS)
    with store.proxy.counting() as seen:
        backend.forget("task-1")
    assert store.calls(seen) == ["delete"]
    assert list(backend.adapter.list()) == []


def test_batch_reads_are_one_request_each_in_parallel(store, make_app):
    backend = store.app(make_app).backend
    ids = [f"task-{i}" for i in range(40)]
    for number, task_id in enumerate(ids):
        backend.store_result(task_id, number, states.SUCCESS)
    with store.proxy.counting() as seen:
        metas = dict(backend.get_many(ids, timeout=10))
    assert store.calls(seen) == ["read"] * 40
    assert {task_id: meta["result"] for task_id, meta in metas.items()} == {
        task_id: number for number, task_id in enumerate(ids)
    }
    assert backend._pool()._max_workers == store.pool_size


def test_group_save_restore_delete(store, make_app):
    app = store.app(make_app)
    group = app.GroupResult("group-1", [app.AsyncResult("a"), app.AsyncResult("b")])
    with store.proxy.counting() as seen:
        group.save(backend=app.backend)
    assert store.calls(seen) == ["write"]
    assert [r.id for r in app.backend.restore_group("group-1", cache=False).results] == ["a", "b"]
    app.backend.delete_group("group-1")
    assert app.backend.restore_group("group-1", cache=False) is None


# -- configuration ---------------------------------------------------------------


def test_unknown_config_key_names_the_closest(store, make_app):
    with pytest.raises(ImproperlyConfigured, match=r"'bucket'.*Did you mean 'bucket_name'"):
        store.app(make_app, {**store.config, "bucket": "x"}).backend  # noqa: B018


def test_missing_bucket_setting_is_named(store, make_app, settings):
    setting = registry().providers[store.preset].settings["bucket_name"][0]
    config = {key: value for key, value in store.config.items() if key != "bucket_name"}
    with pytest.raises(ImproperlyConfigured, match=setting):
        store.app(make_app, config).backend  # noqa: B018


@pytest.mark.parametrize("preset", PROVIDERS)
def test_settings_map_covers_every_storage_setting(preset):
    provider = registry().providers[preset]
    storage_class = import_string(provider.preset_class)
    storage = storage_class.__new__(storage_class)
    assert set(storage.get_default_settings()) <= set(provider.settings)


@pytest.mark.parametrize("preset", PROVIDERS)
def test_readme_shows_the_settings_map(preset):
    root = Path(__file__).parent.parent
    # a provider's section may wait in docs-<provider>.md until it is merged into the README
    readme = "".join(
        path.read_text(encoding="utf-8")
        for path in (root / "README.md", root / f"docs-{preset}.md")
        if path.exists()
    )
    for argument, names in registry().providers[preset].settings.items():
        row = f"| `{argument}` | {', '.join(f'`{name}`' for name in names) or '—'} |"
        assert row in readme, row


# -- hostile ids ---------------------------------------------------------------


@pytest.mark.parametrize("task_id", HOSTILE_IDS)
def test_hostile_ids_stay_inside_the_prefix(store, make_app, task_id):
    store.plant("secret", b'{"status": "SUCCESS", "result": "leaked"}')
    store.plant("celery-results/secret", b'{"status": "SUCCESS"}')
    backend = store.app(make_app).backend
    with store.proxy.counting() as seen:
        assert backend.get_task_meta(task_id, cache=False)["status"] == states.PENDING
        backend.store_result(task_id, "mine", states.SUCCESS)
        assert backend.get_task_meta(task_id, cache=False)["result"] == "mine"
        backend.forget(task_id)
    keys = [key for request in seen for key in store.keys(request)]
    assert len(keys) == len(seen) == 4
    for key in keys:
        assert key.startswith("celery-results/") and "/" not in key[len("celery-results/") :]
    assert store.fetch("secret").endswith(b'"leaked"}')


# -- faults --------------------------------------------------------------------


@pytest.mark.parametrize("fault", ["unavailable", "throttled", "internal-error", "connection-reset"])
def test_throttling_and_resets_are_retried_by_celery(store, make_app, fault):
    app = store.app(make_app, store.without_client_retries(), result_backend_always_retry=True)
    app.backend.store_result("task-1", 42, states.SUCCESS)
    injected = Fault(0, drop=True) if fault == "connection-reset" else store.faults[fault]
    injected.times = 2
    store.proxy.inject(injected)
    with store.proxy.counting() as seen:
        assert app.backend.get_task_meta("task-1", cache=False)["result"] == 42
    assert store.calls(seen) == ["read"] * 3


def test_access_errors_are_not_retried(store, make_app):
    app = store.app(make_app, store.without_client_retries(), result_backend_always_retry=True)
    store.proxy.inject(store.faults["forbidden"])
    with store.proxy.counting() as seen, pytest.raises(Exception, match=r"AccessDenied|403"):
        app.backend.store_result("task-1", 42, states.SUCCESS)
    assert store.calls(seen) == ["create"]


def test_conflicting_conditional_writes_are_version_mismatches(store, make_app):
    adapter = store.app(make_app).backend.adapter
    version = adapter.put("celery-task-meta-x", b"1", "create")
    with pytest.raises(VersionMismatch):
        adapter.put("celery-task-meta-x", b"2", "create")
    assert adapter.put("celery-task-meta-x", b"2", Update(version)) != version
    with pytest.raises(VersionMismatch):
        adapter.put("celery-task-meta-x", b"3", Update(version))
    with pytest.raises(VersionMismatch):
        adapter.put("celery-task-meta-gone", b"3", Update(version))


def test_clients_are_rebuilt_after_fork(store, make_app):
    backend = store.app(make_app).backend
    backend.store_result("task-1", 42, states.SUCCESS)
    parent_client = backend.adapter.client
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: a fresh client that works
        try:
            fresh = backend.adapter.client is not parent_client
            result = backend.get_task_meta("task-1", cache=False)["result"]
            os.write(write, json.dumps([fresh, result]).encode())
        finally:
            os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    with os.fdopen(read) as pipe:
        assert json.loads(pipe.read()) == [True, 42]
