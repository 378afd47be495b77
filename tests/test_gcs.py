"""The GCS provider against a real fake-gcs-server, counted by a proxy in front of it."""

from __future__ import annotations

import json
import os
import re
import time
import zlib
from pathlib import Path
from urllib.parse import parse_qsl, unquote

import pytest
from celery import states
from django.core.files.base import ContentFile

from django_storage_celery_results.adapters import Update
from django_storage_celery_results.exceptions import ImproperlyConfigured, VersionMismatch
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


def test_a_new_result_is_one_create_only_upload(gcs_app, gcs_proxy):
    with gcs_proxy.counting() as seen:
        gcs_app.backend.store_result("task-1", 42, states.SUCCESS)
    assert calls(seen) == ["POST upload multipart ifGenerationMatch=0"]


def test_started_then_success_from_one_worker_is_two_uploads(gcs_app, gcs_proxy):
    backend = gcs_app.backend
    with gcs_proxy.counting() as seen:
        backend.store_result("task-1", None, states.STARTED)
        backend.store_result("task-1", 42, states.SUCCESS)
    assert calls(seen) == [
        "POST upload multipart ifGenerationMatch=0",
        "POST upload multipart ifGenerationMatch=N",
    ]
    assert backend.get_task_meta("task-1", cache=False)["result"] == 42


def test_success_after_another_process_wrote_started_is_three_requests(make_app, gcs_config, gcs_proxy):
    first = make_app(result_storage="gcs", result_storage_config=gcs_config).backend
    second = make_app(result_storage="gcs", result_storage_config=gcs_config).backend
    first.store_result("task-1", None, states.STARTED)
    with gcs_proxy.counting() as seen:
        second.store_result("task-1", 42, states.SUCCESS)
    assert calls(seen) == [
        "POST upload multipart ifGenerationMatch=0",
        "GET media",
        "POST upload multipart ifGenerationMatch=N",
    ]
    assert first.get_task_meta("task-1", cache=False)["status"] == states.SUCCESS


def test_a_late_duplicate_never_overwrites_success(make_app, gcs_config, gcs_proxy):
    first = make_app(result_storage="gcs", result_storage_config=gcs_config).backend
    late = make_app(result_storage="gcs", result_storage_config=gcs_config).backend
    first.store_result("task-1", 42, states.SUCCESS)
    with gcs_proxy.counting() as seen:
        late.store_result("task-1", None, states.STARTED)
    assert calls(seen) == ["POST upload multipart ifGenerationMatch=0", "GET media"]
    assert first.get_task_meta("task-1", cache=False)["result"] == 42


def test_read_is_one_media_download_and_missing_is_pending(gcs_app, gcs_proxy):
    backend = gcs_app.backend
    backend.store_result("task-1", 42, states.SUCCESS)
    with gcs_proxy.counting() as seen:
        assert backend.get_task_meta("task-1", cache=False)["result"] == 42
        assert backend.get_task_meta("never-stored", cache=False)["status"] == states.PENDING
    assert calls(seen) == ["GET media", "GET media"]


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


def test_forget_is_one_delete(gcs_app, gcs_proxy, gcs_raw, gcs_bucket):
    backend = gcs_app.backend
    backend.store_result("task-1", 42, states.SUCCESS)
    with gcs_proxy.counting() as seen:
        backend.forget("task-1")
    assert calls(seen) == ["DELETE object"]
    assert list(gcs_raw.list_blobs(gcs_bucket)) == []


def test_batch_reads_are_one_download_each_in_parallel(gcs_app, gcs_proxy):
    backend = gcs_app.backend
    ids = [f"task-{i}" for i in range(40)]
    for number, task_id in enumerate(ids):
        backend.store_result(task_id, number, states.SUCCESS)
    with gcs_proxy.counting() as seen:
        metas = dict(backend.get_many(ids, timeout=10))
    assert calls(seen) == ["GET media"] * 40
    assert {task_id: meta["result"] for task_id, meta in metas.items()} == {
        task_id: number for number, task_id in enumerate(ids)
    }
    assert backend._pool()._max_workers == 10  # requests' connection pool per host


def test_group_save_restore_delete(gcs_app, gcs_proxy):
    backend = gcs_app.backend
    group = gcs_app.GroupResult("group-1", [gcs_app.AsyncResult("a"), gcs_app.AsyncResult("b")])
    with gcs_proxy.counting() as seen:
        group.save(backend=backend)
    assert calls(seen) == ["POST upload multipart"]
    assert [r.id for r in backend.restore_group("group-1", cache=False).results] == ["a", "b"]
    backend.delete_group("group-1")
    assert backend.restore_group("group-1", cache=False) is None


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
    # a result the earlier package stored through storage.save()
    legacy = app.backend.adapter.storage
    legacy.save(
        "celery-task-meta-old",
        ContentFile(
            json.dumps(
                {"status": "SUCCESS", "result": 7, "task_id": "old", "traceback": None, "children": []}
            ).encode()
        ),
    )
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


def test_unknown_config_key_names_the_closest(make_app, gcs_config):
    with pytest.raises(ImproperlyConfigured, match=r"'bucket'.*Did you mean 'bucket_name'"):
        make_app(result_storage="gcs", result_storage_config={**gcs_config, "bucket": "x"}).backend  # noqa: B018


def test_missing_bucket_setting_is_named(make_app, gcs_config):
    del gcs_config["bucket_name"]
    with pytest.raises(ImproperlyConfigured, match="GS_BUCKET_NAME"):
        make_app(result_storage="gcs", result_storage_config=gcs_config).backend  # noqa: B018


def test_missing_credentials_are_named(make_app, monkeypatch, tmp_path):
    # no emulator, no key file, no gcloud configuration, and no probe of the
    # GCE metadata server (it lives outside this machine)
    monkeypatch.delenv("STORAGE_EMULATOR_HOST", raising=False)
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path))
    monkeypatch.setenv("NO_GCE_CHECK", "True")
    with pytest.raises(ImproperlyConfigured, match=r"GS_CREDENTIALS.*application default credentials"):
        make_app(result_storage="gcs", result_storage_config={"bucket_name": "b"}).backend  # noqa: B018


def test_settings_map_covers_every_storage_setting():
    from storages.backends.gcloud import GoogleCloudStorage

    from django_storage_celery_results_gcs import GCS_SETTINGS

    storage = GoogleCloudStorage.__new__(GoogleCloudStorage)
    assert set(storage.get_default_settings()) <= set(GCS_SETTINGS)


def test_readme_shows_the_settings_map():
    from django_storage_celery_results_gcs import GCS_SETTINGS

    root = Path(__file__).parent.parent
    # the GCS section waits in docs-gcs.md until it is merged into the README
    readme = "".join(
        path.read_text(encoding="utf-8")
        for path in (root / "README.md", root / "docs-gcs.md")
        if path.exists()
    )
    for argument, (names, _meaning) in GCS_SETTINGS.items():
        row = f"| `{argument}` | {', '.join(f'`{name}`' for name in names) or '—'} |"
        assert row in readme, row


# -- hostile ids ---------------------------------------------------------------

HOSTILE_IDS = [
    "../../secret",
    "../secret",
    "/secret",
    "a/../../secret",
    "..",
    ".",
    "%2e%2e%2fsecret",
    "x\\..\\y",
]


@pytest.mark.parametrize("task_id", HOSTILE_IDS)
def test_hostile_ids_stay_inside_the_prefix(gcs_app, gcs_proxy, gcs_raw, gcs_bucket, task_id):
    bucket = gcs_raw.bucket(gcs_bucket)
    bucket.blob("secret").upload_from_string(b'{"status": "SUCCESS", "result": "leaked"}')
    bucket.blob("celery-results/secret").upload_from_string(b'{"status": "SUCCESS"}')
    backend = gcs_app.backend
    with gcs_proxy.counting() as seen:
        assert backend.get_task_meta(task_id, cache=False)["status"] == states.PENDING
        backend.store_result(task_id, "mine", states.SUCCESS)
        assert backend.get_task_meta(task_id, cache=False)["result"] == "mine"
        backend.forget(task_id)
    names = [name for request in seen for name in object_names(request)]
    assert len(names) == len(seen) == 4
    for name in names:
        assert name.startswith("celery-results/") and "/" not in name[len("celery-results/") :]
    assert bucket.blob("secret").download_as_bytes().endswith(b'"leaked"}')


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


@pytest.fixture
def no_client_retries(monkeypatch):
    from django_storage_celery_results_gcs import GCSAdapter

    monkeypatch.setattr(GCSAdapter, "retry", None)


@pytest.mark.parametrize(
    "fault",
    [
        gcs_error(503, "backendError", method="GET"),
        gcs_error(500, "internalError", method="GET"),
        gcs_error(429, "rateLimitExceeded", method="GET"),
        Fault(0, drop=True),
    ],
    ids=["unavailable", "internal-error", "too-many-requests", "connection-reset"],
)
def test_throttling_and_resets_are_retried_by_celery(
    make_app, gcs_config, gcs_proxy, no_client_retries, fault
):
    app = make_app(result_storage="gcs", result_storage_config=gcs_config, result_backend_always_retry=True)
    app.backend.store_result("task-1", 42, states.SUCCESS)
    fault.times = 2
    gcs_proxy.inject(fault)
    with gcs_proxy.counting() as seen:
        assert app.backend.get_task_meta("task-1", cache=False)["result"] == 42
    assert len(seen) == 3


def test_the_client_retries_a_transient_error_itself(gcs_app, gcs_proxy):
    gcs_app.backend.store_result("task-1", 42, states.SUCCESS)
    gcs_proxy.inject(gcs_error(503, "backendError", method="GET"))
    with gcs_proxy.counting() as seen:
        assert gcs_app.backend.get_task_meta("task-1", cache=False)["result"] == 42
    assert calls(seen) == ["GET media", "GET media"]


def test_access_errors_are_not_retried(make_app, gcs_config, gcs_proxy, no_client_retries):
    from google.api_core.exceptions import Forbidden

    app = make_app(result_storage="gcs", result_storage_config=gcs_config, result_backend_always_retry=True)
    gcs_proxy.inject(gcs_error(403, "forbidden", method="POST"))
    with gcs_proxy.counting() as seen, pytest.raises(Forbidden):
        app.backend.store_result("task-1", 42, states.SUCCESS)
    assert len(seen) == 1


def test_conflicting_conditional_writes_are_version_mismatches(gcs_app):
    adapter = gcs_app.backend.adapter
    version = adapter.put("celery-task-meta-x", b"1", "create")
    with pytest.raises(VersionMismatch):
        adapter.put("celery-task-meta-x", b"2", "create")
    assert adapter.put("celery-task-meta-x", b"2", Update(version)) != version
    with pytest.raises(VersionMismatch):
        adapter.put("celery-task-meta-x", b"3", Update(version))
    with pytest.raises(VersionMismatch):
        adapter.put("celery-task-meta-gone", b"3", Update(version))


def test_clients_are_rebuilt_after_fork(gcs_app):
    backend = gcs_app.backend
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
