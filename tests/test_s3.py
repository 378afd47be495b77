"""The S3 provider against a real moto server, counted by a proxy in front of it."""

from __future__ import annotations

import json
import os
import time
import zlib
from pathlib import Path

import pytest
from celery import states
from django.core.files.base import ContentFile

from django_storage_celery_results.exceptions import ImproperlyConfigured, VersionMismatch
from tests.emulators import Fault, Request
from tests.hostile import HOSTILE_IDS


def s3_error(status: int, code: str, **matches: str) -> Fault:
    """An S3-style XML error answer for requests with the given method."""
    body = (
        f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{code}</Code><Message>injected</Message></Error>"
    )
    method = matches.get("method")
    return Fault(
        status,
        body.encode(),
        (("Content-Type", "application/xml"),),
        matches=lambda request: method is None or request.method == method,
    )


def calls(requests: list[Request]) -> list[str]:
    """Requests as 'METHOD condition' (path-independent) for exact budgets."""
    described = []
    for request in requests:
        condition = ""
        if "if-none-match" in request.headers:
            condition = " if-none-match"
        elif "if-match" in request.headers:
            condition = " if-match"
        query = request.query.split("=", 1)[0]
        described.append(f"{request.method}{'?' + query if query else ''}{condition}")
    return described


# -- request budgets -----------------------------------------------------------


def test_a_new_result_is_one_create_only_put(s3_app, s3_proxy):
    with s3_proxy.counting() as seen:
        s3_app.backend.store_result("task-1", 42, states.SUCCESS)
    assert calls(seen) == ["PUT if-none-match"]


def test_started_then_success_from_one_worker_is_two_puts(s3_app, s3_proxy):
    backend = s3_app.backend
    with s3_proxy.counting() as seen:
        backend.store_result("task-1", None, states.STARTED)
        backend.store_result("task-1", 42, states.SUCCESS)
    assert calls(seen) == ["PUT if-none-match", "PUT if-match"]
    assert backend.get_task_meta("task-1", cache=False)["result"] == 42


def test_success_after_another_process_wrote_started_is_three_requests(make_app, s3_config, s3_proxy):
    first = make_app(result_storage="s3", result_storage_config=s3_config).backend
    second = make_app(result_storage="s3", result_storage_config=s3_config).backend
    first.store_result("task-1", None, states.STARTED)
    with s3_proxy.counting() as seen:
        second.store_result("task-1", 42, states.SUCCESS)
    assert calls(seen) == ["PUT if-none-match", "GET", "PUT if-match"]
    assert first.get_task_meta("task-1", cache=False)["status"] == states.SUCCESS


def test_a_late_duplicate_never_overwrites_success(make_app, s3_config, s3_proxy):
    first = make_app(result_storage="s3", result_storage_config=s3_config).backend
    late = make_app(result_storage="s3", result_storage_config=s3_config).backend
    first.store_result("task-1", 42, states.SUCCESS)
    with s3_proxy.counting() as seen:
        late.store_result("task-1", None, states.STARTED)
    assert calls(seen) == ["PUT if-none-match", "GET"]
    assert first.get_task_meta("task-1", cache=False)["result"] == 42


def test_read_is_one_get_and_missing_is_pending(s3_app, s3_proxy):
    backend = s3_app.backend
    backend.store_result("task-1", 42, states.SUCCESS)
    with s3_proxy.counting() as seen:
        assert backend.get_task_meta("task-1", cache=False)["result"] == 42
        assert backend.get_task_meta("never-stored", cache=False)["status"] == states.PENDING
    assert calls(seen) == ["GET", "GET"]


def test_forbidden_read_of_a_missing_key_is_pending(s3_app, s3_proxy):
    # without s3:ListBucket, S3 answers 403 AccessDenied for a missing key
    s3_proxy.inject(s3_error(403, "AccessDenied", method="GET"))
    assert s3_app.backend.get_task_meta("never-stored", cache=False)["status"] == states.PENDING


def test_forget_is_one_delete(s3_app, s3_proxy, s3_raw, s3_bucket):
    backend = s3_app.backend
    backend.store_result("task-1", 42, states.SUCCESS)
    with s3_proxy.counting() as seen:
        backend.forget("task-1")
    assert calls(seen) == ["DELETE"]
    assert s3_raw.list_objects_v2(Bucket=s3_bucket).get("KeyCount") == 0


def test_batch_reads_are_one_get_each_in_parallel(s3_app, s3_proxy):
    backend = s3_app.backend
    ids = [f"task-{i}" for i in range(40)]
    for number, task_id in enumerate(ids):
        backend.store_result(task_id, number, states.SUCCESS)
    with s3_proxy.counting() as seen:
        metas = dict(backend.get_many(ids, timeout=10))
    assert calls(seen) == ["GET"] * 40
    assert {task_id: meta["result"] for task_id, meta in metas.items()} == {
        task_id: number for number, task_id in enumerate(ids)
    }
    assert backend._pool()._max_workers == 10  # botocore's default connection pool


def test_group_save_restore_delete(s3_app, s3_proxy):
    backend = s3_app.backend
    group = s3_app.GroupResult("group-1", [s3_app.AsyncResult("a"), s3_app.AsyncResult("b")])
    with s3_proxy.counting() as seen:
        group.save(backend=backend)
    assert calls(seen) == ["PUT"]
    assert [r.id for r in backend.restore_group("group-1", cache=False).results] == ["a", "b"]
    backend.delete_group("group-1")
    assert backend.restore_group("group-1", cache=False) is None


# -- objects as S3 sees them ---------------------------------------------------


def test_objects_are_labelled_for_the_serializer(make_app, s3_config, s3_raw, s3_bucket):
    app = make_app(result_storage="s3", result_storage_config=s3_config, result_serializer="json")
    app.backend.store_result("task-1", {"answer": 42}, states.SUCCESS)
    head = s3_raw.head_object(Bucket=s3_bucket, Key="celery-results/celery-task-meta-task-1")
    assert head["ContentType"] == "application/json"
    assert "ContentEncoding" not in head


def test_compressed_results_carry_a_content_encoding(make_app, s3_config, s3_raw, s3_bucket):
    app = make_app(
        result_storage="s3", result_storage_config=s3_config, result_compression="zlib", result_extended=True
    )
    app.backend.store_result("task-1", {"answer": 42}, states.SUCCESS)
    stored = s3_raw.get_object(Bucket=s3_bucket, Key="celery-results/celery-task-meta-task-1")
    assert stored["ContentType"] == "application/json"
    assert stored["ContentEncoding"] == "deflate"  # HTTP's name for zlib data
    assert json.loads(zlib.decompress(stored["Body"].read()))["result"] == {"answer": 42}
    assert app.backend.get_task_meta("task-1", cache=False)["result"] == {"answer": 42}


def test_compression_http_cannot_name_stays_in_band(make_app, s3_config, s3_raw, s3_bucket):
    app = make_app(result_storage="s3", result_storage_config=s3_config, result_compression="bzip2")
    app.backend.store_result("task-1", "x" * 1000, states.SUCCESS)
    head = s3_raw.head_object(Bucket=s3_bucket, Key="celery-results/celery-task-meta-task-1")
    assert head["ContentType"] == "application/octet-stream"
    assert "ContentEncoding" not in head
    assert app.backend.get_task_meta("task-1", cache=False)["result"] == "x" * 1000


def test_object_parameters_of_the_storage_apply(make_app, s3_config, s3_raw, s3_bucket):
    params = {"ServerSideEncryption": "AES256", "StorageClass": "STANDARD_IA", "Metadata": {"team": "a"}}
    app = make_app(result_storage="s3", result_storage_config={**s3_config, "object_parameters": params})
    app.backend.store_result("task-1", 1, states.SUCCESS)
    head = s3_raw.head_object(Bucket=s3_bucket, Key="celery-results/celery-task-meta-task-1")
    assert head["ServerSideEncryption"] == "AES256"
    assert head["StorageClass"] == "STANDARD_IA"
    assert head["Metadata"] == {"team": "a"}


# -- configuration ---------------------------------------------------------------


def test_earlier_package_configuration_works_unchanged(make_app, settings, s3_proxy, s3_bucket, s3_raw):
    # the earlier README: S3Boto3Storage, credentials and bucket in the config,
    # the endpoint and region from the project's AWS_* settings
    settings.AWS_S3_ENDPOINT_URL = s3_proxy.url
    settings.AWS_S3_REGION_NAME = "us-east-1"
    config = {
        "access_key": "testing",
        "secret_key": "testing",
        "bucket_name": s3_bucket,
        "location": "results",
    }
    app = make_app(
        result_backend="django_storage_celery_results.backends.StorageBackend",
        result_storage="storages.backends.s3boto3.S3Boto3Storage",
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
    keys = {item["Key"] for item in s3_raw.list_objects_v2(Bucket=s3_bucket)["Contents"]}
    assert keys == {"results/celery-task-meta-old", "results/celery-task-meta-new"}
    assert type(app.backend.adapter).__name__ == "S3Adapter"


def test_preset_keeps_results_private_and_apart_from_media(make_app, settings, s3_config, s3_raw, s3_bucket):
    settings.AWS_LOCATION = "media"
    settings.AWS_DEFAULT_ACL = "public-read"
    settings.AWS_S3_FILE_OVERWRITE = False
    app = make_app(result_storage="s3", result_storage_config=s3_config)
    storage = app.backend.adapter.storage
    assert (storage.location, storage.default_acl, storage.file_overwrite) == ("celery-results", None, True)
    app.backend.store_result("task-1", 1, states.SUCCESS)
    grants = s3_raw.get_object_acl(Bucket=s3_bucket, Key="celery-results/celery-task-meta-task-1")["Grants"]
    assert all("URI" not in grant["Grantee"] for grant in grants)


def test_result_config_wins_over_shared_settings(make_app, settings, s3_config, s3_raw, s3_bucket):
    settings.AWS_STORAGE_BUCKET_NAME = "media-bucket-that-does-not-exist"
    app = make_app(result_storage="s3", result_storage_config={**s3_config, "location": "tasks/results"})
    app.backend.store_result("task-1", 1, states.SUCCESS)
    assert s3_raw.head_object(Bucket=s3_bucket, Key="tasks/results/celery-task-meta-task-1")


def test_unknown_config_key_names_the_closest(make_app, s3_config):
    with pytest.raises(ImproperlyConfigured, match=r"'bucket'.*Did you mean 'bucket_name'"):
        make_app(result_storage="s3", result_storage_config={**s3_config, "bucket": "x"}).backend  # noqa: B018


def test_missing_bucket_setting_is_named(make_app):
    with pytest.raises(ImproperlyConfigured, match="AWS_STORAGE_BUCKET_NAME"):
        make_app(result_storage="s3", result_storage_config={"region_name": "us-east-1"}).backend  # noqa: B018


def test_settings_map_covers_every_storage_setting():
    from storages.backends.s3 import S3Storage

    from django_storage_celery_results_s3 import S3_SETTINGS

    storage = S3Storage.__new__(S3Storage)
    assert set(storage.get_default_settings()) <= set(S3_SETTINGS)


def test_readme_shows_the_settings_map():
    from django_storage_celery_results_s3 import S3_SETTINGS

    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    for argument, (names, _meaning) in S3_SETTINGS.items():
        row = f"| `{argument}` | {', '.join(f'`{name}`' for name in names) or '—'} |"
        assert row in readme, row


# -- hostile ids ---------------------------------------------------------------


@pytest.mark.parametrize("task_id", HOSTILE_IDS)
def test_hostile_ids_stay_inside_the_prefix(s3_app, s3_proxy, s3_raw, s3_bucket, task_id):
    s3_raw.put_object(Bucket=s3_bucket, Key="secret", Body=b'{"status": "SUCCESS", "result": "leaked"}')
    s3_raw.put_object(Bucket=s3_bucket, Key="celery-results/secret", Body=b'{"status": "SUCCESS"}')
    backend = s3_app.backend
    with s3_proxy.counting() as seen:
        assert backend.get_task_meta(task_id, cache=False)["status"] == states.PENDING
        backend.store_result(task_id, "mine", states.SUCCESS)
        assert backend.get_task_meta(task_id, cache=False)["result"] == "mine"
        backend.forget(task_id)
    for request in seen:
        assert request.path.startswith(f"/{s3_bucket}/celery-results/")
        assert "/" not in request.path[len(f"/{s3_bucket}/celery-results/") :]
    assert s3_raw.get_object(Bucket=s3_bucket, Key="secret")["Body"].read().endswith(b'"leaked"}')


# -- expiry --------------------------------------------------------------------


def test_cleanup_deletes_exactly_the_expired_results(make_app, s3_config, s3_proxy, s3_raw, s3_bucket):
    app = make_app(result_storage="s3", result_storage_config=s3_config, result_expires=2)
    backend = app.backend
    for task_id in ("old-1", "old-2"):
        backend.store_result(task_id, 1, states.SUCCESS)
    backend.set(backend.get_key_for_group("old-group"), backend.encode({"result": []}))
    s3_raw.put_object(Bucket=s3_bucket, Key="celery-results/not-a-result", Body=b"x")
    s3_raw.put_object(Bucket=s3_bucket, Key="celery-task-meta-outside-prefix", Body=b"x")
    s3_raw.put_object(Bucket=s3_bucket, Key="celery-results/nested/celery-task-meta-x", Body=b"x")
    time.sleep(3)
    backend.store_result("fresh", 1, states.SUCCESS)
    with s3_proxy.counting() as seen:
        backend.cleanup()
    assert calls(seen) == ["GET?list-type", "POST?delete"]
    keys = {item["Key"] for item in s3_raw.list_objects_v2(Bucket=s3_bucket)["Contents"]}
    assert keys == {
        "celery-results/celery-task-meta-fresh",
        "celery-results/not-a-result",
        "celery-task-meta-outside-prefix",
        "celery-results/nested/celery-task-meta-x",
    }


def test_delete_many_sends_batches_of_a_thousand(s3_app, s3_proxy):
    with s3_proxy.counting() as seen:
        s3_app.backend.adapter.delete_many(f"celery-task-meta-{i}" for i in range(2500))
    assert calls(seen) == ["POST?delete"] * 3


def test_lifecycle_rule_is_created_kept_and_updated(s3_app, s3_raw, s3_bucket):
    from django_storage_celery_results_s3 import ensure_lifecycle_rule, find_expiry_rule

    s3_raw.put_bucket_lifecycle_configuration(
        Bucket=s3_bucket,
        LifecycleConfiguration={
            "Rules": [
                {"ID": "media", "Status": "Enabled", "Filter": {"Prefix": "tmp/"}, "Expiration": {"Days": 3}}
            ]
        },
    )
    adapter = s3_app.backend.adapter
    assert find_expiry_rule(adapter) is None
    assert ensure_lifecycle_rule(adapter, 86400) == "created"
    assert ensure_lifecycle_rule(adapter, 86400) == "unchanged"
    assert ensure_lifecycle_rule(adapter, 86400 * 2.5) == "updated"
    rules = s3_raw.get_bucket_lifecycle_configuration(Bucket=s3_bucket)["Rules"]
    assert sorted(rule["ID"] for rule in rules) == ["celery-results:celery-results/", "media"]
    assert find_expiry_rule(adapter)["Expiration"] == {"Days": 3}


def test_lifecycle_rule_refuses_the_bucket_root(make_app, s3_config):
    app = make_app(result_storage="s3", result_storage_config={**s3_config, "location": ""})
    from django_storage_celery_results_s3 import ensure_lifecycle_rule

    with pytest.raises(ImproperlyConfigured, match="every object of the bucket"):
        ensure_lifecycle_rule(app.backend.adapter, 86400)


# -- faults --------------------------------------------------------------------


def no_sdk_retries(config: dict) -> dict:
    from botocore.config import Config

    return {**config, "client_config": Config(retries={"max_attempts": 1, "mode": "standard"})}


@pytest.mark.parametrize(
    "fault",
    [
        s3_error(503, "SlowDown", method="GET"),
        s3_error(500, "InternalError", method="GET"),
        Fault(0, drop=True),
    ],
    ids=["slow-down", "internal-error", "connection-reset"],
)
def test_throttling_and_resets_are_retried(make_app, s3_config, s3_proxy, fault):
    app = make_app(
        result_storage="s3", result_storage_config=no_sdk_retries(s3_config), result_backend_always_retry=True
    )
    app.backend.store_result("task-1", 42, states.SUCCESS)
    fault.times = 2
    s3_proxy.inject(fault)
    with s3_proxy.counting() as seen:
        assert app.backend.get_task_meta("task-1", cache=False)["result"] == 42
    assert len(seen) == 3


def test_access_errors_are_not_retried(make_app, s3_config, s3_proxy):
    from botocore.exceptions import ClientError

    app = make_app(
        result_storage="s3", result_storage_config=no_sdk_retries(s3_config), result_backend_always_retry=True
    )
    s3_proxy.inject(s3_error(403, "AccessDenied", method="PUT"))
    with s3_proxy.counting() as seen, pytest.raises(ClientError, match="AccessDenied"):
        app.backend.store_result("task-1", 42, states.SUCCESS)
    assert len(seen) == 1


def test_conflicting_conditional_writes_are_version_mismatches(s3_app):
    adapter = s3_app.backend.adapter
    version = adapter.put("celery-task-meta-x", b"1", "create")
    with pytest.raises(VersionMismatch):
        adapter.put("celery-task-meta-x", b"2", "create")
    from django_storage_celery_results.adapters import Update

    assert adapter.put("celery-task-meta-x", b"2", Update(version)) != version
    with pytest.raises(VersionMismatch):
        adapter.put("celery-task-meta-x", b"3", Update(version))
    with pytest.raises(VersionMismatch):
        adapter.put("celery-task-meta-gone", b"3", Update(version))


def test_clients_are_rebuilt_after_fork(s3_app):
    backend = s3_app.backend
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
