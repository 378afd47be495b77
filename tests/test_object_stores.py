"""What every object-store provider promises, run against each emulator behind the counting proxy.

Budgets are counted in one vocabulary for all stores: ``create`` (a
create-only write), ``update`` (a write matched against a version),
``write`` (unconditional), ``read``, ``delete``, and for cleanup ``list``
and ``bulk-delete``; each provider's store in support.stores says how those
look on its wire, and its own test module tests what only it does. A
provider joins this suite by its StoreUnderTest in support.stores.STORES.
"""

from __future__ import annotations

import io
import json
import os
import time
import zlib
from pathlib import Path
from urllib.parse import parse_qs

import brotli
import pytest
from celery import states
from django.utils.module_loading import import_string

from django_storage_celery_results.adapters import Update
from django_storage_celery_results.checks import check_result_storage, check_result_storage_connection
from django_storage_celery_results.exceptions import ImproperlyConfigured, VersionMismatch
from django_storage_celery_results.providers import registry, resolve
from support.faults import Fault
from support.hostile import HOSTILE_IDS
from support.stores import STORES, StoreUnderTest

try:
    from compression import zstd  # Python 3.14
except ImportError:
    from backports import zstd

KEY = "celery-results/celery-task-meta-task-1"


PROVIDERS = list(STORES)


@pytest.fixture(params=PROVIDERS)
def store(request, fresh_store) -> StoreUnderTest:
    """One provider's store (support.stores): a fresh bucket behind the counting proxy."""
    return fresh_store(request.param)


def save_as_the_earlier_package(app, task_id: str, result) -> None:
    """A SUCCESS result as the earlier package stored it: JSON through storage.save()."""
    from django.core.files.base import ContentFile

    meta = {"status": "SUCCESS", "result": result, "task_id": task_id, "traceback": None, "children": []}
    app.backend.adapter.storage.save(f"celery-task-meta-{task_id}", ContentFile(json.dumps(meta).encode()))


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
        backend.forget("never-stored")  # already gone is no error
    assert store.calls(seen) == ["delete", "delete"]
    assert store.names() == set()


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


# -- objects as the store sees them -----------------------------------------------


def test_objects_are_labelled_for_the_serializer(store, make_app):
    store.app(make_app, result_serializer="json").backend.store_result(
        "task-1", {"answer": 42}, states.SUCCESS
    )
    assert store.labels(KEY) == ("application/json", None)


def test_compressed_results_carry_a_content_encoding(store, make_app):
    backend = store.app(make_app, result_compression="zlib", result_extended=True).backend
    backend.store_result("task-1", {"answer": 42}, states.SUCCESS)
    assert store.labels(KEY) == ("application/json", "deflate")  # HTTP's name for zlib data
    stored = store.fetch(KEY)
    assert json.loads(zlib.decompress(stored))["result"] == {"answer": 42}
    # the adapter gets the stored bytes too, not what an HTTP client would decode
    assert backend.adapter.read("celery-task-meta-task-1").data == stored
    assert backend.get_task_meta("task-1", cache=False)["result"] == {"answer": 42}


@pytest.mark.parametrize(
    ("compression", "encoding", "decompress"),
    [
        ("brotli", "br", brotli.decompress),
        ("zstd", "zstd", zstd.decompress),
    ],
    ids=["brotli", "zstd"],
)
def test_brotli_and_zstd_results_carry_their_content_encoding(
    store, make_app, compression, encoding, decompress
):
    backend = store.app(make_app, result_compression=compression).backend
    backend.store_result("task-1", {"answer": 42, "text": "x" * 1000}, states.SUCCESS)
    assert store.labels(KEY) == ("application/json", encoding)
    assert json.loads(decompress(store.fetch(KEY)))["result"]["answer"] == 42
    assert backend.get_task_meta("task-1", cache=False)["result"] == {"answer": 42, "text": "x" * 1000}


def test_compression_http_cannot_name_stays_in_band(store, make_app):
    backend = store.app(make_app, result_compression="bzip2").backend
    backend.store_result("task-1", "x" * 1000, states.SUCCESS)
    assert store.labels(KEY) == ("application/octet-stream", None)
    assert backend.get_task_meta("task-1", cache=False)["result"] == "x" * 1000


# -- configuration ---------------------------------------------------------------


def test_unknown_config_key_names_the_closest(store, make_app):
    typo = store.bucket_key.removeprefix("azure_").removesuffix("_name")  # 'bucket', 'container'
    with pytest.raises(ImproperlyConfigured, match=rf"'{typo}'.*Did you mean '{store.bucket_key}'"):
        store.app(make_app, {**store.config, typo: "x"}).backend  # noqa: B018


def test_missing_bucket_setting_is_named(store, make_app):
    setting = registry().providers[store.preset].settings[store.bucket_key][0]
    config = {key: value for key, value in store.config.items() if key != store.bucket_key}
    with pytest.raises(ImproperlyConfigured, match=setting):
        store.app(make_app, config).backend  # noqa: B018


def test_shared_settings_feed_the_storage_and_the_config_wins(store, make_app, settings):
    names = registry().providers[store.preset].settings
    for argument, value in store.config.items():
        setattr(settings, names[argument][0], value)
    setattr(settings, names[store.bucket_key][0], "media-bucket-that-does-not-exist")
    config = {store.bucket_key: store.config[store.bucket_key], "location": "tasks/results"}
    store.app(make_app, config).backend.store_result("task-1", 1, states.SUCCESS)
    assert store.names() == {"tasks/results/celery-task-meta-task-1"}


def test_preset_defaults_win_over_the_media_settings(store, make_app, settings):
    provider = registry().providers[store.preset]
    media = {  # what the project's media settings say instead
        "location": "media",
        "file_overwrite": False,
        "overwrite_files": False,
        "default_acl": store.public_acl,
    }
    for argument in provider.preset_defaults:
        setattr(settings, provider.settings[argument][0], media[argument])
    storage = store.app(make_app).backend.adapter.storage
    assert {argument: getattr(storage, argument) for argument in provider.preset_defaults} == dict(
        provider.preset_defaults
    )


def test_earlier_package_configuration_works_unchanged(store, make_app):
    # the earlier README: the storage class path, everything in the config
    app = make_app(
        result_backend="django_storage_celery_results.backends.StorageBackend",
        result_storage=store.storage_class,
        result_storage_config={**store.config, "location": "results"},
    )
    save_as_the_earlier_package(app, "old", 7)
    assert app.AsyncResult("old").get(timeout=5) == 7
    app.backend.store_result("new", None, states.STARTED)
    app.backend.store_result("new", 8, states.SUCCESS)
    assert app.AsyncResult("new").get(timeout=5) == 8
    assert store.names() == {"results/celery-task-meta-old", "results/celery-task-meta-new"}
    assert type(app.backend.adapter) is resolve(registry().providers[store.preset].adapter)


@pytest.mark.parametrize("preset", PROVIDERS)
def test_settings_map_covers_every_storage_setting(preset):
    provider = registry().providers[preset]
    storage_class = import_string(provider.preset_class)
    storage = storage_class.__new__(storage_class)
    assert set(storage.get_default_settings()) <= set(provider.settings)


@pytest.mark.parametrize("preset", PROVIDERS)
def test_readme_shows_the_settings_map(preset):
    root = Path(__file__).parent.parent
    # the settings maps moved from the README to the docs' configuration page
    readme = (root / "docs" / "configuration.md").read_text(encoding="utf-8")
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
    assert len(set(keys)) == 1
    assert keys[0].startswith("celery-results/") and "/" not in keys[0][len("celery-results/") :]
    assert store.fetch("secret").endswith(b'"leaked"}')
    assert store.names() == {"secret", "celery-results/secret"}


# -- expiry --------------------------------------------------------------------


def test_cleanup_deletes_exactly_the_expired_results(store, make_app):
    backend = store.app(make_app, result_expires=2).backend
    for task_id in ("old-1", "old-2"):
        backend.store_result(task_id, 1, states.SUCCESS)
    backend.set(backend.get_key_for_group("old-group"), backend.encode({"result": []}))
    others = {
        "celery-results/not-a-result",
        "celery-task-meta-outside",
        "celery-results/nested/celery-task-meta-x",
    }
    for key in others:
        store.plant(key, b"x")
    time.sleep(3)
    backend.store_result("fresh", 1, states.SUCCESS)
    with store.proxy.counting() as seen:
        backend.cleanup()
    assert store.calls(seen) == ["list", "bulk-delete"]
    assert parse_qs(seen[0].query)["delimiter"] == ["/"]  # only what is directly under the prefix
    assert store.names() == {"celery-results/celery-task-meta-fresh", *others}


def test_delete_many_sends_full_batches(store, make_app):
    adapter = store.app(make_app).backend.adapter
    names = [f"celery-task-meta-{i}" for i in range(2 * store.delete_batch + store.delete_batch // 2)]
    for name in names[:3]:
        adapter.put(name, b"{}")
    with store.proxy.counting() as seen:
        adapter.delete_many(names)  # most are missing: that is no error
    assert store.calls(seen) == ["bulk-delete"] * 3
    assert store.names() == set()


def test_names_only_listings_are_one_request_and_leave_out_deeper_names(store, make_app):
    """What chord bookkeeping lists: the names directly under the prefix, as
    list() gives them, in one listing request (Azure: list_blob_names)."""
    adapter = store.app(make_app).backend.adapter
    for name in ["chord-x~b0~1", "chord-x~b0~2", "chord-x~b1~1", "chord-y~b0~1"]:
        adapter.put(name, b"{}")
    adapter.storage.save("chord-x~b0~deeper/name", io.BytesIO(b"{}"))  # not ours: below a "/"
    with store.proxy.counting() as seen:
        names = list(adapter.list_names("chord-x~b0~"))
    assert store.calls(seen) == ["list"]
    assert sorted(names) == ["chord-x~b0~1", "chord-x~b0~2"]
    assert sorted(names) == sorted(item.name for item in adapter.list(prefix="chord-x~b0~"))


def test_a_lifecycle_rule_refuses_the_bucket_root(store, make_app):
    adapter = store.app(make_app, {**store.config, "location": ""}).backend.adapter
    with pytest.raises(
        ImproperlyConfigured, match=r"would expire every (object of the bucket|blob of the container)"
    ):
        store.lifecycle(adapter, 86400)


# -- checks --------------------------------------------------------------------


def check_ids(messages) -> list[str]:
    return [message.id.rsplit(".", 1)[1] for message in messages]


def test_the_connectivity_check_names_a_missing_bucket(store, make_app):
    provider = registry().providers[store.preset]
    adapter = store.app(make_app, {**store.config, store.bucket_key: "no-such-bucket"}).backend.adapter
    messages = provider.connectivity(adapter, None)
    assert check_ids(messages) == ["E010"]
    assert "'no-such-bucket' does not exist" in messages[0].msg
    assert provider.settings[store.bucket_key][0] in messages[0].hint


def test_the_connectivity_probe_leaves_nothing_behind(store, make_app):
    adapter = store.app(make_app).backend.adapter
    with store.proxy.counting() as seen:
        registry().providers[store.preset].connectivity(adapter, None)
    assert store.names() == set()
    probes = {key for request in seen for key in store.keys(request)}
    # a probe object, and where chords count with appends a probe append object
    assert len(probes) == (2 if adapter.appends else 1)
    assert all(key.startswith("celery-results/celery-check-") for key in probes)


def test_the_deploy_check_runs_the_connectivity_check_with_result_expires(store, make_app):
    app = store.app(make_app, result_expires=86400)
    app.set_current()
    assert check_result_storage() == []
    expected = check_ids(registry().providers[store.preset].connectivity(app.backend.adapter, 86400))
    assert check_ids(check_result_storage_connection()) == expected != []  # expiry advice at least


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
    with store.proxy.counting() as seen, pytest.raises(Exception, match="injected"):
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
    assert adapter.read("celery-task-meta-x").data == b"2"


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
