"""The Azure provider against a real Azurite, counted by a proxy in front of it."""

from __future__ import annotations

import dataclasses
import json
import multiprocessing
import time
import zlib
from pathlib import Path

import pytest
from celery import states
from django.core.files.base import ContentFile

from django_storage_celery_results.adapters import CREATE, Update
from django_storage_celery_results.exceptions import ImproperlyConfigured, VersionMismatch
from tests.azure_calls import azure_error, calls, no_sdk_retries
from tests.emulators import AZURITE_ACCOUNT, Fault, azurite_connection_string
from tests.hostile import HOSTILE_IDS

KEY = "celery-results/celery-task-meta-task-1"


# -- request budgets -----------------------------------------------------------


def test_a_new_result_is_one_create_only_put(azure_app, azure_proxy):
    with azure_proxy.counting() as seen:
        azure_app.backend.store_result("task-1", 42, states.SUCCESS)
    assert calls(seen) == ["PUT if-none-match"]
    assert seen[0].headers["if-none-match"] == "*"


def test_started_then_success_from_one_worker_is_two_puts(azure_app, azure_proxy):
    backend = azure_app.backend
    with azure_proxy.counting() as seen:
        backend.store_result("task-1", None, states.STARTED)
        backend.store_result("task-1", 42, states.SUCCESS)
    assert calls(seen) == ["PUT if-none-match", "PUT if-match"]
    assert backend.get_task_meta("task-1", cache=False)["result"] == 42


def test_success_after_another_process_wrote_started_is_three_requests(make_app, azure_config, azure_proxy):
    first = make_app(result_storage="azure", result_storage_config=azure_config).backend
    second = make_app(result_storage="azure", result_storage_config=azure_config).backend
    first.store_result("task-1", None, states.STARTED)
    with azure_proxy.counting() as seen:
        second.store_result("task-1", 42, states.SUCCESS)
    assert calls(seen) == ["PUT if-none-match", "GET", "PUT if-match"]
    assert first.get_task_meta("task-1", cache=False)["status"] == states.SUCCESS


def test_a_late_duplicate_never_overwrites_success(make_app, azure_config, azure_proxy):
    first = make_app(result_storage="azure", result_storage_config=azure_config).backend
    late = make_app(result_storage="azure", result_storage_config=azure_config).backend
    first.store_result("task-1", 42, states.SUCCESS)
    with azure_proxy.counting() as seen:
        late.store_result("task-1", None, states.STARTED)
    assert calls(seen) == ["PUT if-none-match", "GET"]
    assert first.get_task_meta("task-1", cache=False)["result"] == 42


def test_read_is_one_get_and_missing_is_pending(azure_app, azure_proxy):
    backend = azure_app.backend
    backend.store_result("task-1", 42, states.SUCCESS)
    with azure_proxy.counting() as seen:
        assert backend.get_task_meta("task-1", cache=False)["result"] == 42
        assert backend.get_task_meta("never-stored", cache=False)["status"] == states.PENDING
    assert calls(seen) == ["GET", "GET"]


def test_a_missing_container_is_an_error_not_pending(make_app, azure_config):
    from azure.core.exceptions import ResourceNotFoundError

    config = {**azure_config, "azure_container": "no-such-container"}
    app = make_app(result_storage="azure", result_storage_config=config)
    with pytest.raises(ResourceNotFoundError, match="ContainerNotFound"):
        app.backend.get_task_meta("task-1", cache=False)


def test_forget_is_one_delete(azure_app, azure_proxy, azure_raw):
    backend = azure_app.backend
    backend.store_result("task-1", 42, states.SUCCESS)
    with azure_proxy.counting() as seen:
        backend.forget("task-1")
        backend.forget("never-stored")
    assert calls(seen) == ["DELETE", "DELETE"]
    assert list(azure_raw.list_blob_names()) == []


def test_batch_reads_are_one_get_each_in_parallel(azure_app, azure_proxy):
    backend = azure_app.backend
    ids = [f"task-{i}" for i in range(40)]
    for number, task_id in enumerate(ids):
        backend.store_result(task_id, number, states.SUCCESS)
    with azure_proxy.counting() as seen:
        metas = dict(backend.get_many(ids, timeout=10))
    assert calls(seen) == ["GET"] * 40
    assert {task_id: meta["result"] for task_id, meta in metas.items()} == {
        task_id: number for number, task_id in enumerate(ids)
    }
    assert backend._pool()._max_workers == 10  # the requests session's connection pool


def test_group_save_restore_delete(azure_app, azure_proxy):
    backend = azure_app.backend
    group = azure_app.GroupResult("group-1", [azure_app.AsyncResult("a"), azure_app.AsyncResult("b")])
    with azure_proxy.counting() as seen:
        group.save(backend=backend)
    assert calls(seen) == ["PUT"]
    assert [r.id for r in backend.restore_group("group-1", cache=False).results] == ["a", "b"]
    backend.delete_group("group-1")
    assert backend.restore_group("group-1", cache=False) is None


# -- blobs as Azure sees them --------------------------------------------------


def test_blobs_are_labelled_for_the_serializer(make_app, azure_config, azure_raw):
    app = make_app(result_storage="azure", result_storage_config=azure_config, result_serializer="json")
    app.backend.store_result("task-1", {"answer": 42}, states.SUCCESS)
    labels = azure_raw.get_blob_client(KEY).get_blob_properties().content_settings
    assert labels.content_type == "application/json"
    assert labels.content_encoding is None


def test_compressed_results_carry_a_content_encoding(make_app, azure_config, azure_raw):
    app = make_app(
        result_storage="azure",
        result_storage_config=azure_config,
        result_compression="zlib",
        result_extended=True,
    )
    app.backend.store_result("task-1", {"answer": 42}, states.SUCCESS)
    stored = azure_raw.download_blob(KEY, decompress=False)
    assert stored.properties.content_settings.content_type == "application/json"
    assert stored.properties.content_settings.content_encoding == "deflate"  # HTTP's name for zlib data
    assert json.loads(zlib.decompress(stored.readall()))["result"] == {"answer": 42}
    assert app.backend.get_task_meta("task-1", cache=False)["result"] == {"answer": 42}


def test_compression_http_cannot_name_stays_in_band(make_app, azure_config, azure_raw):
    app = make_app(result_storage="azure", result_storage_config=azure_config, result_compression="bzip2")
    app.backend.store_result("task-1", "x" * 1000, states.SUCCESS)
    labels = azure_raw.get_blob_client(KEY).get_blob_properties().content_settings
    assert labels.content_type == "application/octet-stream"
    assert labels.content_encoding is None
    assert app.backend.get_task_meta("task-1", cache=False)["result"] == "x" * 1000


def test_content_settings_of_the_storage_apply(make_app, azure_config, azure_raw):
    config = {
        **azure_config,
        "cache_control": "private, max-age=60",
        "object_parameters": {"content_language": "en", "content_type": "text/plain"},
    }
    app = make_app(result_storage="azure", result_storage_config=config)
    app.backend.store_result("task-1", 1, states.SUCCESS)
    labels = azure_raw.get_blob_client(KEY).get_blob_properties().content_settings
    assert (labels.cache_control, labels.content_language) == ("private, max-age=60", "en")
    assert labels.content_type == "application/json"  # the serializer's, not the media default


# -- configuration ---------------------------------------------------------------


def test_earlier_package_configuration_works_unchanged(make_app, azure_proxy, azure_container, azure_raw):
    # the earlier package's style: the class path, everything in the config,
    # and AzureStorage's own default of keeping existing blobs
    config = {
        "connection_string": azurite_connection_string(azure_proxy.url),
        "azure_container": azure_container,
        "location": "results",
    }
    app = make_app(
        result_backend="django_storage_celery_results.backends.StorageBackend",
        result_storage="storages.backends.azure_storage.AzureStorage",
        result_storage_config=config,
    )
    storage = app.backend.adapter.storage
    assert storage.overwrite_files is False
    # a result the earlier package stored through storage.save()
    meta = {"status": "SUCCESS", "result": 7, "task_id": "old", "traceback": None, "children": []}
    storage.save("celery-task-meta-old", ContentFile(json.dumps(meta).encode()))
    assert app.AsyncResult("old").get(timeout=5) == 7
    app.backend.store_result("new", None, states.STARTED)
    app.backend.store_result("new", 8, states.SUCCESS)
    assert app.AsyncResult("new").get(timeout=5) == 8
    assert set(azure_raw.list_blob_names()) == {
        "results/celery-task-meta-old",
        "results/celery-task-meta-new",
    }
    assert type(app.backend.adapter).__name__ == "AzureAdapter"


def test_preset_overwrites_in_place_apart_from_media(make_app, settings, azure_config):
    settings.AZURE_LOCATION = "media"
    settings.AZURE_OVERWRITE_FILES = False
    storage = make_app(result_storage="azure", result_storage_config=azure_config).backend.adapter.storage
    assert (storage.location, storage.overwrite_files) == ("celery-results", True)


def test_shared_settings_feed_the_storage_and_the_config_wins(make_app, settings, azure_config, azure_raw):
    settings.AZURE_CONNECTION_STRING = azure_config["connection_string"]
    settings.AZURE_CONTAINER = "media-container-that-does-not-exist"
    config = {"azure_container": azure_config["azure_container"], "location": "tasks/results"}
    app = make_app(result_storage="azure", result_storage_config=config)
    app.backend.store_result("task-1", 1, states.SUCCESS)
    assert list(azure_raw.list_blob_names()) == ["tasks/results/celery-task-meta-task-1"]


def test_unknown_config_key_names_the_closest(make_app, azure_config):
    with pytest.raises(ImproperlyConfigured, match=r"'container'.*Did you mean 'azure_container'"):
        make_app(result_storage="azure", result_storage_config={**azure_config, "container": "x"}).backend  # noqa: B018


@pytest.mark.parametrize(
    ("config", "named"),
    [
        ({"connection_string": "UseDevelopmentStorage=true"}, "AZURE_CONTAINER"),
        ({"azure_container": "c"}, "AZURE_ACCOUNT_NAME"),
    ],
    ids=["container", "account"],
)
def test_missing_settings_are_named(make_app, config, named):
    with pytest.raises(ImproperlyConfigured, match=named):
        make_app(result_storage="azure", result_storage_config=config).backend  # noqa: B018


def test_settings_map_covers_every_storage_setting():
    from storages.backends.azure_storage import AzureStorage

    from django_storage_celery_results_azure import AZURE_SETTINGS

    storage = AzureStorage.__new__(AzureStorage)
    assert set(storage.get_default_settings()) <= set(AZURE_SETTINGS)


def test_readme_shows_the_settings_map():
    from django_storage_celery_results_azure import AZURE_SETTINGS

    root = Path(__file__).parent.parent
    # docs-azure.md holds the section until it is merged into the README
    readme = "".join(path.read_text(encoding="utf-8") for path in root.glob("*.md"))
    for argument, (names, _meaning) in AZURE_SETTINGS.items():
        row = f"| `{argument}` | {', '.join(f'`{name}`' for name in names) or '—'} |"
        assert row in readme, row


def test_client_options_apply_with_a_connection_string(make_app, azure_config, azure_proxy):
    app = make_app(result_storage="azure", result_storage_config=no_sdk_retries(azure_config))
    azure_proxy.inject(azure_error(503, "ServerBusy", method="GET"))
    with azure_proxy.counting() as seen, pytest.raises(Exception, match="ServerBusy"):
        app.backend.adapter.read("celery-task-meta-x")
    assert len(seen) == 1  # AzureStorage alone would retry 3 times, 15 s apart


# -- hostile ids ---------------------------------------------------------------

#: Azure parses a '?' or '#' in a URL path and Windows tools drop a trailing dot.
AZURE_HOSTILE_IDS = [*HOSTILE_IDS, "x.", "a?comp=list", "a#fragment", "..."]


@pytest.mark.parametrize("task_id", AZURE_HOSTILE_IDS)
def test_hostile_ids_stay_inside_the_prefix(azure_app, azure_proxy, azure_raw, azure_container, task_id):
    azure_raw.upload_blob("secret", b'{"status": "SUCCESS", "result": "leaked"}')
    azure_raw.upload_blob("celery-results/secret", b'{"status": "SUCCESS"}')
    backend = azure_app.backend
    with azure_proxy.counting() as seen:
        assert backend.get_task_meta(task_id, cache=False)["status"] == states.PENDING
        backend.store_result(task_id, "mine", states.SUCCESS)
        assert backend.get_task_meta(task_id, cache=False)["result"] == "mine"
        backend.forget(task_id)
    inside = f"/{AZURITE_ACCOUNT}/{azure_container}/celery-results/"
    for request in seen:
        assert request.path.startswith(inside)
        assert "/" not in request.path[len(inside) :]
        assert "%2f" not in request.path.lower()
    assert azure_raw.download_blob("secret").readall().endswith(b'"leaked"}')
    assert set(azure_raw.list_blob_names()) == {"secret", "celery-results/secret"}


# -- expiry --------------------------------------------------------------------


def test_cleanup_deletes_exactly_the_expired_results(make_app, azure_config, azure_proxy, azure_raw):
    app = make_app(result_storage="azure", result_storage_config=azure_config, result_expires=2)
    backend = app.backend
    for task_id in ("old-1", "old-2"):
        backend.store_result(task_id, 1, states.SUCCESS)
    backend.set(backend.get_key_for_group("old-group"), backend.encode({"result": []}))
    for other in (
        "celery-results/not-a-result",
        "celery-task-meta-outside",
        "celery-results/nested/celery-task-meta-x",
    ):
        azure_raw.upload_blob(other, b"x")
    time.sleep(3)
    backend.store_result("fresh", 1, states.SUCCESS)
    with azure_proxy.counting() as seen:
        backend.cleanup()
    assert calls(seen) == ["GET?comp=list", "POST?comp=batch"]
    assert "delimiter=%2F" in seen[0].query or "delimiter=/" in seen[0].query
    assert set(azure_raw.list_blob_names()) == {
        "celery-results/celery-task-meta-fresh",
        "celery-results/not-a-result",
        "celery-task-meta-outside",
        "celery-results/nested/celery-task-meta-x",
    }


def test_delete_many_sends_batches_of_256(azure_app, azure_proxy, azure_raw):
    adapter = azure_app.backend.adapter
    names = [f"celery-task-meta-{i}" for i in range(600)]
    for name in names[:3]:
        adapter.put(name, b"{}")
    with azure_proxy.counting() as seen:
        adapter.delete_many(names)  # most are missing: that is no error
    assert calls(seen) == ["POST?comp=batch"] * 3
    assert list(azure_raw.list_blob_names()) == []


def test_delete_many_falls_back_to_single_deletes_without_the_batch_api(azure_app, azure_proxy, azure_raw):
    adapter = azure_app.backend.adapter
    for name in ("celery-task-meta-a", "celery-task-meta-b"):
        adapter.put(name, b"{}")
    azure_proxy.inject(azure_error(501, "NotImplemented", method="POST"))
    with azure_proxy.counting() as seen:
        adapter.delete_many(["celery-task-meta-a", "celery-task-meta-b"])
        adapter.delete_many(["celery-task-meta-c", "celery-task-meta-d"])  # no second try of the batch API
    assert calls(seen) == ["POST?comp=batch", "DELETE", "DELETE", "DELETE", "DELETE"]
    assert list(azure_raw.list_blob_names()) == []


def test_a_failed_batch_delete_is_reported(azure_app, azure_raw):
    from azure.storage.blob import BlobLeaseClient

    adapter = azure_app.backend.adapter
    for name in ("celery-task-meta-a", "celery-task-meta-b"):
        adapter.put(name, b"{}")
    BlobLeaseClient(azure_raw.get_blob_client("celery-results/celery-task-meta-b")).acquire(-1)
    with pytest.raises(OSError, match=r"did not delete 1 of 2 results.*'celery-task-meta-b': HTTP 412"):
        adapter.delete_many(["celery-task-meta-a", "celery-task-meta-b"])


def test_lifecycle_policy_deletes_the_prefix_after_whole_days(azure_app, azure_container):
    import datetime

    from django_storage_celery_results_azure import lifecycle_policy

    adapter = azure_app.backend.adapter
    media = {"name": "media", "enabled": True, "type": "Lifecycle", "definition": {}}
    policy = lifecycle_policy(adapter, datetime.timedelta(days=1, seconds=1), current={"rules": [media]})
    assert policy["rules"][0] == media
    rule = policy["rules"][1]
    assert rule["definition"] == {
        "filters": {"blobTypes": ["blockBlob"], "prefixMatch": [f"{azure_container}/celery-results/"]},
        "actions": {"baseBlob": {"delete": {"daysAfterModificationGreaterThan": 2}}},
    }
    assert rule["name"].isalnum()
    again = lifecycle_policy(adapter, 86400, current=policy)
    assert [r["name"] for r in again["rules"]] == ["media", rule["name"]]
    assert again["rules"][1]["definition"]["actions"]["baseBlob"]["delete"] == {
        "daysAfterModificationGreaterThan": 1
    }


def test_lifecycle_policy_refuses_the_container_root(make_app, azure_config):
    from django_storage_celery_results_azure import lifecycle_policy

    app = make_app(result_storage="azure", result_storage_config={**azure_config, "location": ""})
    with pytest.raises(ImproperlyConfigured, match="every blob of the container"):
        lifecycle_policy(app.backend.adapter, 86400)


# -- faults --------------------------------------------------------------------


@pytest.fixture
def retrying_app(make_app, azure_config):
    """Retries by the backend alone (result_backend_always_retry), none by the SDK."""
    return make_app(
        result_storage="azure",
        result_storage_config=no_sdk_retries(azure_config),
        result_backend_always_retry=True,
    )


TRANSIENT_FAULTS = {
    "server-busy": azure_error(503, "ServerBusy", method="GET"),
    "operation-timed-out": azure_error(500, "OperationTimedOut", method="GET"),
    "connection-reset": Fault(0, drop=True),
}


@pytest.mark.parametrize("fault_name", TRANSIENT_FAULTS)
def test_throttling_and_resets_are_retried(retrying_app, azure_proxy, fault_name):
    retrying_app.backend.store_result("task-1", 42, states.SUCCESS)
    azure_proxy.inject(dataclasses.replace(TRANSIENT_FAULTS[fault_name], times=2))
    with azure_proxy.counting() as seen:
        assert retrying_app.backend.get_task_meta("task-1", cache=False)["result"] == 42
    assert len(seen) == 3


def test_a_body_cut_short_is_retryable_and_a_refusal_is_not(azure_app):
    from azure.core.exceptions import ClientAuthenticationError, IncompleteReadError

    adapter = azure_app.backend.adapter
    assert adapter.is_retryable(IncompleteReadError("connection closed mid-body"))
    assert not adapter.is_retryable(ClientAuthenticationError("no token"))


def test_access_errors_are_not_retried(retrying_app, azure_proxy):
    from azure.core.exceptions import HttpResponseError

    azure_proxy.inject(azure_error(403, "AuthorizationPermissionMismatch", method="PUT"))
    with (
        azure_proxy.counting() as seen,
        pytest.raises(HttpResponseError, match="AuthorizationPermissionMismatch"),
    ):
        retrying_app.backend.store_result("task-1", 42, states.SUCCESS)
    assert len(seen) == 1


def test_conflicting_conditional_writes_are_version_mismatches(azure_app):
    adapter = azure_app.backend.adapter
    version = adapter.put("celery-task-meta-x", b"1", CREATE)
    with pytest.raises(VersionMismatch, match="BlobAlreadyExists"):
        adapter.put("celery-task-meta-x", b"2", CREATE)
    assert adapter.put("celery-task-meta-x", b"2", Update(version)) != version
    with pytest.raises(VersionMismatch, match="ConditionNotMet"):
        adapter.put("celery-task-meta-x", b"3", Update(version))
    with pytest.raises(VersionMismatch):
        adapter.put("celery-task-meta-gone", b"3", Update(version))
    assert adapter.read("celery-task-meta-x").data == b"2"


def test_clients_are_rebuilt_after_fork(azure_app):
    backend = azure_app.backend
    backend.store_result("task-1", 42, states.SUCCESS)
    parent_client = backend.adapter.client
    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)

    def child() -> None:  # runs in the forked process; nothing is pickled
        adapter = backend.adapter
        sender.send(
            (adapter.client is not parent_client, backend.get_task_meta("task-1", cache=False)["result"])
        )

    process = context.Process(target=child)
    process.start()
    process.join(60)
    assert process.exitcode == 0
    assert receiver.recv() == (True, 42)
