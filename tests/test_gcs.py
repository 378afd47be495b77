"""What only the GCS provider does, against a real fake-gcs-server counted by a proxy in front of it.

The contract every object store keeps runs for GCS in test_object_stores.py.
"""

from __future__ import annotations

import json
import os
from urllib.parse import parse_qsl

import pytest
from celery import states

from django_storage_celery_results.exceptions import ImproperlyConfigured
from support.faults import Fault
from support.stores.gcs import bucket_answer, calls, gcs_error, results_rule

KEY = "celery-results/celery-task-meta-task-1"


# -- request budgets -----------------------------------------------------------


def test_no_background_bucket_lookups_and_the_environment_is_left_alone(gcs_app, gcs_proxy):
    # google-cloud-storage 3.x would GET the bucket after the first call and after a 404
    with gcs_proxy.counting() as seen:
        gcs_app.backend.get_task_meta("never-stored", cache=False)
        gcs_app.backend.store_result("task-1", 1, states.SUCCESS)
        gcs_app.backend.forget("never-stored")
        gcs_app.backend.cleanup()  # result_expires is set by default: one listing
    assert calls(seen) == [
        "GET media",
        "POST upload multipart ifGenerationMatch=0",
        "DELETE object",
        "GET list",
    ]
    assert "DISABLE_GCS_PYTHON_CLIENT_OTEL_BUCKET_METADATA" not in os.environ


def test_a_result_above_eight_mib_is_still_one_upload(gcs_app, gcs_proxy):
    big = "x" * (9 * 1024 * 1024)  # google-cloud-storage would switch to a resumable upload
    with gcs_proxy.counting() as seen:
        gcs_app.backend.store_result("task-1", big, states.SUCCESS)
    assert calls(seen) == ["POST upload multipart ifGenerationMatch=0"]
    assert gcs_app.backend.get_task_meta("task-1", cache=False)["result"] == big


# -- objects as GCS sees them --------------------------------------------------


def test_object_parameters_of_the_storage_apply(make_app, gcs_config, gcs_proxy, gcs_raw, gcs_bucket):
    key = "projects/p/locations/l/keyRings/r/cryptoKeys/results"
    params = {
        "storage_class": "NEARLINE",
        "metadata": {"team": "a"},
        "cache_control": "no-store",
        "kms_key_name": key,
        "content_type": "text/plain",  # the result's own label wins
    }
    app = make_app(result_storage="gcs", result_storage_config={**gcs_config, "object_parameters": params})
    with gcs_proxy.counting() as seen:
        app.backend.store_result("task-1", 1, states.SUCCESS)
    blob = gcs_raw.bucket(gcs_bucket).get_blob(KEY)
    assert (blob.storage_class, blob.metadata, blob.cache_control) == ("NEARLINE", {"team": "a"}, "no-store")
    assert blob.content_type == "application/json"
    assert dict(parse_qsl(seen[0].query))["kmsKeyName"] == key  # the emulator does not keep it


# -- configuration ---------------------------------------------------------------


def test_a_public_media_acl_does_not_reach_results(make_app, settings, gcs_config, gcs_raw, gcs_bucket):
    settings.GS_DEFAULT_ACL = "publicRead"
    app = make_app(result_storage="gcs", result_storage_config=gcs_config)
    app.backend.store_result("task-1", 1, states.SUCCESS)
    blob = gcs_raw.bucket(gcs_bucket).blob(KEY)
    blob.acl.reload()
    assert not {entry["entity"] for entry in blob.acl} & {"allUsers", "allAuthenticatedUsers"}


def test_missing_credentials_are_named(make_app, monkeypatch):
    from google.auth.exceptions import DefaultCredentialsError

    def no_default_credentials(*args, **kwargs):
        raise DefaultCredentialsError("no key file, no gcloud login, no metadata server")

    # what google.auth.default() says on a machine without any credentials,
    # without asking the GCE metadata server (it lives outside this machine)
    monkeypatch.delenv("STORAGE_EMULATOR_HOST", raising=False)
    monkeypatch.setattr("google.auth.default", no_default_credentials)
    with pytest.raises(ImproperlyConfigured, match=r"GS_CREDENTIALS.*application default credentials"):
        make_app(result_storage="gcs", result_storage_config={"bucket_name": "b"}).backend  # noqa: B018


# -- expiry --------------------------------------------------------------------


def test_a_failed_deletion_in_a_batch_is_raised(gcs_app, gcs_proxy):
    boundary = "b"
    body = (
        f"--{boundary}\r\nContent-Type: application/http\r\nContent-ID: <response-0>\r\n\r\n"
        "HTTP/1.1 204 No Content\r\n\r\n"
        f"--{boundary}\r\nContent-Type: application/http\r\nContent-ID: <response-1>\r\n\r\n"
        "HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\n\r\n{}\r\n"
        f"--{boundary}--\r\n"
    )
    gcs_proxy.inject(Fault(200, body.encode(), (("Content-Type", f"multipart/mixed; boundary={boundary}"),)))
    with pytest.raises(
        OSError, match=r"did not delete 1 of 2 results.*'celery-results/celery-task-meta-b'.*403"
    ):
        gcs_app.backend.adapter.delete_many(["celery-task-meta-a", "celery-task-meta-b"])


def test_lifecycle_rule_is_created_kept_and_updated(gcs_app, gcs_proxy, gcs_bucket):
    from django_storage_celery_results_gcs import ensure_lifecycle_rule, find_expiry_rule

    adapter = gcs_app.backend.adapter
    media = {"action": {"type": "SetStorageClass", "storageClass": "COLDLINE"}, "condition": {"age": 30}}
    unknown = {"action": {"type": "SomeFutureAction"}, "condition": {"age": 9}}  # kept as it is
    gcs_proxy.inject(bucket_answer(gcs_bucket, [media, unknown]))
    assert find_expiry_rule(adapter) is None
    gcs_proxy.inject(bucket_answer(gcs_bucket, [media, unknown]))
    with gcs_proxy.counting() as created:
        assert ensure_lifecycle_rule(adapter, 86400) == "created"
    assert calls(created) == ["GET bucket", "PATCH bucket"]
    assert dict(parse_qsl(created[1].query))["ifMetagenerationMatch"] == "3"
    assert json.loads(created[1].body) == {"lifecycle": {"rule": [media, unknown, results_rule(1)]}}

    gcs_proxy.inject(bucket_answer(gcs_bucket, [media, results_rule(1)]))
    assert ensure_lifecycle_rule(adapter, 86400) == "unchanged"
    gcs_proxy.inject(bucket_answer(gcs_bucket, [results_rule(1), media]))
    with gcs_proxy.counting() as updated:
        assert ensure_lifecycle_rule(adapter, 86400 * 2.5) == "updated"
    assert json.loads(updated[1].body) == {"lifecycle": {"rule": [media, results_rule(3)]}}
    gcs_proxy.inject(bucket_answer(gcs_bucket, [media, results_rule(3)]))
    assert find_expiry_rule(adapter) == results_rule(3)


@pytest.mark.parametrize(
    ("rule", "covers"),
    [
        ({"action": {"type": "Delete"}, "condition": {"age": 5}}, True),  # the whole bucket
        (results_rule(5, prefix="celery-"), True),
        (results_rule(5, prefix="media/"), False),
        ({"action": {"type": "Delete"}, "condition": {"age": 5, "matchesStorageClass": ["NEARLINE"]}}, False),
        ({"action": {"type": "SetStorageClass", "storageClass": "COLDLINE"}, "condition": {"age": 5}}, False),
    ],
)
def test_an_expiry_rule_must_delete_every_result(gcs_app, gcs_proxy, gcs_bucket, rule, covers):
    from django_storage_celery_results_gcs import find_expiry_rule

    gcs_proxy.inject(bucket_answer(gcs_bucket, [rule]))
    assert (find_expiry_rule(gcs_app.backend.adapter) == rule) is covers


# -- faults --------------------------------------------------------------------


def test_the_client_retries_a_transient_error_itself(gcs_app, gcs_proxy):
    gcs_app.backend.store_result("task-1", 42, states.SUCCESS)
    gcs_proxy.inject(gcs_error(503, "backendError", method="GET"))
    with gcs_proxy.counting() as seen:
        assert gcs_app.backend.get_task_meta("task-1", cache=False)["result"] == 42
    assert calls(seen) == ["GET media", "GET media"]
