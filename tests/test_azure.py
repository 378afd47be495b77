"""What only the Azure provider does, against a real Azurite counted by a proxy in front of it.

The contract every object store keeps runs for Azure in test_object_stores.py:
there a create is a Put Blob with ``If-None-Match: *``, an update one with
``If-Match``, a read a Get Blob, a delete a Delete Blob; cleanup lists with a
delimiter and deletes in blob batches.
"""

from __future__ import annotations

import pytest
from celery import states

from django_storage_celery_results.adapters import CREATE, Update
from django_storage_celery_results.exceptions import ImproperlyConfigured, VersionMismatch
from support.stores.azure import azure_error, calls, no_sdk_retries

KEY = "celery-results/celery-task-meta-task-1"


def test_a_missing_container_is_an_error_not_pending(make_app, azure_config):
    from azure.core.exceptions import ResourceNotFoundError

    config = {**azure_config, "azure_container": "no-such-container"}
    app = make_app(result_storage="azure", result_storage_config=config)
    with pytest.raises(ResourceNotFoundError, match="ContainerNotFound"):
        app.backend.get_task_meta("task-1", cache=False)


# -- blobs as Azure sees them --------------------------------------------------


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


def test_the_class_path_keeps_azurestorage_refusing_to_overwrite(make_app, azure_config):
    # the shared suite's earlier-package test updates results through such a storage
    app = make_app(
        result_backend="django_storage_celery_results.backends.StorageBackend",
        result_storage="storages.backends.azure_storage.AzureStorage",
        result_storage_config=azure_config,
    )
    assert app.backend.adapter.storage.overwrite_files is False


def test_a_missing_account_is_named(make_app):
    with pytest.raises(ImproperlyConfigured, match="AZURE_ACCOUNT_NAME"):
        make_app(result_storage="azure", result_storage_config={"azure_container": "c"}).backend  # noqa: B018


def test_client_options_apply_with_a_connection_string(make_app, azure_config, azure_proxy):
    app = make_app(result_storage="azure", result_storage_config=no_sdk_retries(azure_config))
    azure_proxy.inject(azure_error(503, "ServerBusy", method="GET"))
    with azure_proxy.counting() as seen, pytest.raises(Exception, match="ServerBusy"):
        app.backend.adapter.read("celery-task-meta-x")
    assert len(seen) == 1  # AzureStorage alone would retry 3 times, 15 s apart


# -- expiry --------------------------------------------------------------------


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
        # a chord's buckets are append blobs: expired with the results
        "filters": {
            "blobTypes": ["blockBlob", "appendBlob"],
            "prefixMatch": [f"{azure_container}/celery-results/"],
        },
        "actions": {"baseBlob": {"delete": {"daysAfterModificationGreaterThan": 2}}},
    }
    assert rule["name"].isalnum()
    again = lifecycle_policy(adapter, 86400, current=policy)
    assert [r["name"] for r in again["rules"]] == ["media", rule["name"]]
    assert again["rules"][1]["definition"]["actions"]["baseBlob"]["delete"] == {
        "daysAfterModificationGreaterThan": 1
    }


# -- faults --------------------------------------------------------------------


def test_a_body_cut_short_is_retryable_and_a_refusal_is_not(azure_app):
    from azure.core.exceptions import ClientAuthenticationError, IncompleteReadError

    adapter = azure_app.backend.adapter
    assert adapter.is_retryable(IncompleteReadError("connection closed mid-body"))
    assert not adapter.is_retryable(ClientAuthenticationError("no token"))


def test_a_lost_conditional_write_names_the_azure_error(azure_app):
    adapter = azure_app.backend.adapter
    version = adapter.put("celery-task-meta-x", b"1", CREATE)
    with pytest.raises(VersionMismatch, match="BlobAlreadyExists"):
        adapter.put("celery-task-meta-x", b"2", CREATE)
    with pytest.raises(VersionMismatch, match="ConditionNotMet"):
        adapter.put("celery-task-meta-x", b"2", Update(version + "stale"))
