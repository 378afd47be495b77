"""The GCS provider against a real fake-gcs-server, counted by a proxy in front of it."""

from __future__ import annotations

import json
import os
import re
import time
import zlib
from urllib.parse import parse_qsl, unquote

import pytest
from celery import states

from django_storage_celery_results.exceptions import ImproperlyConfigured
from tests.conftest import save_as_the_earlier_package
from tests.emulators import Fault, Request

KEY = "celery-results/celery-task-meta-task-1"


def calls(requests: list[Request]) -> list[str]:
    """Requests as 'METHOD what condition' (path-independent) for exact budgets."""
    described = []
    for request in requests:
        query = dict(parse_qsl(request.query))
        if request.path.startswith("/upload/"):
            what = f"upload {query.get('uploadType')}"
        elif request.path.startswith("/download/"):
            what = "media"
        elif request.path.startswith("/batch/"):
            what = "batch"
        elif request.path.endswith("/o"):
            what = "list"
        elif "/o/" in request.path:
            what = "object"
        else:
            what = "bucket"
        generation = query.get("ifGenerationMatch")
        condition = "" if generation is None else f" ifGenerationMatch={'0' if generation == '0' else 'N'}"
        described.append(f"{request.method} {what}{condition}")
    return described


def object_names(request: Request) -> list[str]:
    """The object names a request touches: in its path, or in an upload's metadata."""
    if request.path.startswith("/upload/"):
        return [json.loads(match)["name"] for match in re.findall(rb"\{[^{}]*\"name\"[^{}]*\}", request.body)]
    if "/o/" in request.path:  # the quoted name is one path segment
        return [unquote(request.path.split("/o/", 1)[1].split("/", 1)[0])]
    return []


def gcs_error(status: int, reason: str, **matches: str) -> Fault:
    """A GCS JSON API error answer for requests with the given method."""
    body = {"error": {"code": status, "message": "injected", "errors": [{"reason": reason}]}}
    method = matches.get("method")
    return Fault(
        status,
        json.dumps(body).encode(),
        (("Content-Type", "application/json"),),
        matches=lambda request: method is None or request.method == method,
    )


def bucket_answer(bucket: str, rules=(), uniform: bool = False, prevention: str = "inherited") -> Fault:
    """The bucket's GET as GCS would answer it: fake-gcs-server keeps no lifecycle
    rules and no uniform bucket-level access or public access prevention."""
    resource = {
        "kind": "storage#bucket",
        "id": bucket,
        "name": bucket,
        "metageneration": "3",
        "iamConfiguration": {
            "uniformBucketLevelAccess": {"enabled": uniform},
            "publicAccessPrevention": prevention,
        },
        "lifecycle": {"rule": list(rules)},
    }
    return Fault(
        200,
        json.dumps(resource).encode(),
        (("Content-Type", "application/json"),),
        matches=lambda request: request.method == "GET" and request.path == f"/storage/v1/b/{bucket}",
    )


def results_rule(days: int, prefix: str = "celery-results/") -> dict:
    return {"action": {"type": "Delete"}, "condition": {"age": days, "matchesPrefix": [prefix]}}


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


def test_objects_are_labelled_for_the_serializer(make_app, gcs_config, gcs_raw, gcs_bucket):
    app = make_app(result_storage="gcs", result_storage_config=gcs_config, result_serializer="json")
    app.backend.store_result("task-1", {"answer": 42}, states.SUCCESS)
    blob = gcs_raw.bucket(gcs_bucket).get_blob(KEY)
    assert (blob.content_type, blob.content_encoding) == ("application/json", None)


def test_compressed_results_carry_a_content_encoding_and_download_raw(
    make_app, gcs_config, gcs_raw, gcs_bucket
):
    app = make_app(
        result_storage="gcs",
        result_storage_config=gcs_config,
        result_compression="zlib",
        result_extended=True,
    )
    app.backend.store_result("task-1", {"answer": 42}, states.SUCCESS)
    blob = gcs_raw.bucket(gcs_bucket).get_blob(KEY)
    assert (blob.content_type, blob.content_encoding) == ("application/json", "deflate")
    stored = blob.download_as_bytes(raw_download=True)
    assert json.loads(zlib.decompress(stored))["result"] == {"answer": 42}
    # the adapter gets the stored bytes too, not what requests would decode
    assert app.backend.adapter.read("celery-task-meta-task-1").data == stored
    assert app.backend.get_task_meta("task-1", cache=False)["result"] == {"answer": 42}


def test_compression_http_cannot_name_stays_in_band(make_app, gcs_config, gcs_raw, gcs_bucket):
    app = make_app(result_storage="gcs", result_storage_config=gcs_config, result_compression="bzip2")
    app.backend.store_result("task-1", "x" * 1000, states.SUCCESS)
    blob = gcs_raw.bucket(gcs_bucket).get_blob(KEY)
    assert (blob.content_type, blob.content_encoding) == ("application/octet-stream", None)
    assert app.backend.get_task_meta("task-1", cache=False)["result"] == "x" * 1000


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


def test_earlier_package_configuration_works_unchanged(make_app, gcs_config, gcs_raw, gcs_bucket):
    # the earlier README: GoogleCloudStorage with credentials, bucket and location
    config = {"credentials": gcs_config["credentials"], "bucket_name": gcs_bucket, "location": "results"}
    app = make_app(
        result_backend="django_storage_celery_results.backends.StorageBackend",
        result_storage="storages.backends.gcloud.GoogleCloudStorage",
        result_storage_config=config,
    )
    save_as_the_earlier_package(app, "old", 7)
    assert app.AsyncResult("old").get(timeout=5) == 7
    app.backend.store_result("new", 8, states.SUCCESS)
    names = {blob.name for blob in gcs_raw.list_blobs(gcs_bucket)}
    assert names == {"results/celery-task-meta-old", "results/celery-task-meta-new"}
    assert type(app.backend.adapter).__name__ == "GCSAdapter"


def test_preset_keeps_results_private_and_apart_from_media(
    make_app, settings, gcs_config, gcs_raw, gcs_bucket
):
    settings.GS_LOCATION = "media"
    settings.GS_DEFAULT_ACL = "publicRead"
    settings.GS_FILE_OVERWRITE = False
    app = make_app(result_storage="gcs", result_storage_config=gcs_config)
    storage = app.backend.adapter.storage
    assert (storage.location, storage.default_acl, storage.file_overwrite) == ("celery-results", None, True)
    app.backend.store_result("task-1", 1, states.SUCCESS)
    blob = gcs_raw.bucket(gcs_bucket).blob(KEY)
    blob.acl.reload()
    assert not {entry["entity"] for entry in blob.acl} & {"allUsers", "allAuthenticatedUsers"}


def test_result_config_wins_over_shared_settings(make_app, settings, gcs_config, gcs_raw, gcs_bucket):
    settings.GS_BUCKET_NAME = "media-bucket-that-does-not-exist"
    app = make_app(result_storage="gcs", result_storage_config={**gcs_config, "location": "tasks/results"})
    app.backend.store_result("task-1", 1, states.SUCCESS)
    assert gcs_raw.bucket(gcs_bucket).get_blob("tasks/results/celery-task-meta-task-1")


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


def test_cleanup_deletes_exactly_the_expired_results(make_app, gcs_config, gcs_proxy, gcs_raw, gcs_bucket):
    app = make_app(result_storage="gcs", result_storage_config=gcs_config, result_expires=2)
    backend = app.backend
    for task_id in ("old-1", "old-2"):
        backend.store_result(task_id, 1, states.SUCCESS)
    backend.set(backend.get_key_for_group("old-group"), backend.encode({"result": []}))
    bucket = gcs_raw.bucket(gcs_bucket)
    for name in ("celery-results/not-a-result", "celery-task-meta-outside", "celery-results/nested/celery-x"):
        bucket.blob(name).upload_from_string(b"x")
    time.sleep(3)
    backend.store_result("fresh", 1, states.SUCCESS)
    with gcs_proxy.counting() as seen:
        backend.cleanup()
    assert calls(seen) == ["GET list", "POST batch"]
    assert {blob.name for blob in gcs_raw.list_blobs(gcs_bucket)} == {
        "celery-results/celery-task-meta-fresh",
        "celery-results/not-a-result",
        "celery-task-meta-outside",
        "celery-results/nested/celery-x",
    }


def test_delete_many_sends_batches_of_a_hundred(gcs_app, gcs_proxy, gcs_raw, gcs_bucket):
    backend = gcs_app.backend
    for number in range(3):
        backend.store_result(f"task-{number}", number, states.SUCCESS)
    names = [f"celery-task-meta-task-{number}" for number in range(250)]  # most of them missing
    with gcs_proxy.counting() as seen:
        backend.adapter.delete_many(names)
    assert calls(seen) == ["POST batch"] * 3
    assert list(gcs_raw.list_blobs(gcs_bucket)) == []


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


def test_lifecycle_rule_refuses_the_bucket_root(make_app, gcs_config):
    from django_storage_celery_results_gcs import ensure_lifecycle_rule

    app = make_app(result_storage="gcs", result_storage_config={**gcs_config, "location": ""})
    with pytest.raises(ImproperlyConfigured, match="every object of the bucket"):
        ensure_lifecycle_rule(app.backend.adapter, 86400)


# -- faults --------------------------------------------------------------------


def test_the_client_retries_a_transient_error_itself(gcs_app, gcs_proxy):
    gcs_app.backend.store_result("task-1", 42, states.SUCCESS)
    gcs_proxy.inject(gcs_error(503, "backendError", method="GET"))
    with gcs_proxy.counting() as seen:
        assert gcs_app.backend.get_task_meta("task-1", cache=False)["result"] == 42
    assert calls(seen) == ["GET media", "GET media"]
