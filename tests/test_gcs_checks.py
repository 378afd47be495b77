"""The GCS provider's checks against fake-gcs-server: settings, connectivity, lifecycle, access.

fake-gcs-server keeps no lifecycle rules, IAM policies or uniform bucket-level
access: where a test needs them, the counting proxy answers as GCS would.
"""

from __future__ import annotations

import json

from django_storage_celery_results_gcs import check_connectivity, check_settings
from support.faults import Fault
from support.processes import free_port
from support.stores.gcs import bucket_answer, calls, gcs_error, results_rule

DAY = 86400


def ids(messages) -> list[str]:
    return [message.id.rsplit(".", 1)[1] for message in messages]


def adapter_for(make_app, config: dict, **conf):
    return make_app(result_storage="gcs", result_storage_config=config, **conf).backend.adapter


def test_a_healthy_store_with_a_lifecycle_rule_passes(make_app, gcs_config, gcs_proxy, gcs_bucket):
    adapter = adapter_for(make_app, gcs_config)
    gcs_proxy.inject(bucket_answer(gcs_bucket, [results_rule(1)], uniform=True, prevention="enforced"))
    assert check_settings(adapter) == []
    assert check_connectivity(adapter, DAY) == []


def test_the_probe_asks_only_the_bucket(make_app, gcs_config, gcs_bucket, gcs_proxy):
    adapter = adapter_for(make_app, gcs_config)
    with gcs_proxy.counting() as seen:
        check_connectivity(adapter, None)
    assert calls(seen) == [
        "GET list",
        "POST upload multipart ifGenerationMatch=0",  # the probe object
        "GET media",
        "POST upload multipart ifGenerationMatch=0",  # must fail: it exists
        "POST upload multipart ifGenerationMatch=N",  # must fail: another generation
        "GET object",  # its ACL
        "DELETE object",
        "GET bucket",
        "GET bucket",  # its IAM policy
    ]
    assert all(request.path.startswith(("/storage/v1/b/", "/upload/", "/download/")) for request in seen)
    assert all(f"/b/{gcs_bucket}" in request.path for request in seen)


def test_a_missing_lifecycle_rule_warns(make_app, gcs_config):
    messages = check_connectivity(adapter_for(make_app, gcs_config), DAY)
    assert ids(messages) == ["I011", "W011"]  # the emulator has uniform bucket-level access off
    assert "uniform bucket-level access" in messages[0].hint
    assert "celery.backend_cleanup" in messages[1].hint


def test_a_lifecycle_rule_for_another_expiry_warns(make_app, gcs_config, gcs_proxy, gcs_bucket):
    adapter = adapter_for(make_app, gcs_config)
    gcs_proxy.inject(bucket_answer(gcs_bucket, [results_rule(7)], uniform=True))
    messages = check_connectivity(adapter, DAY)
    assert ids(messages) == ["W012"]
    assert "for ['celery-results/'] expires results after 7 days" in messages[0].msg


def test_an_unreachable_endpoint_is_an_error(make_app, gcs_config, monkeypatch):
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", f"http://127.0.0.1:{free_port()}")
    messages = check_connectivity(adapter_for(make_app, gcs_config), DAY)
    assert ids(messages) == ["E012"]


def test_a_store_ignoring_generation_preconditions_is_an_error(make_app, gcs_config, gcs_proxy):
    adapter = adapter_for(make_app, gcs_config)
    ignoring = Fault(
        200,
        json.dumps({"generation": "7"}).encode(),
        (("Content-Type", "application/json"),),
        matches=lambda request: "ifGenerationMatch=1" in request.query,
    )
    gcs_proxy.inject(ignoring)
    messages = check_connectivity(adapter, None)
    assert ids(messages) == ["E014", "I011"]
    assert "ifGenerationMatch=<generation>" in messages[0].msg


def test_a_public_predefined_acl_is_an_error_before_and_after_writing(make_app, gcs_config):
    adapter = adapter_for(make_app, {**gcs_config, "default_acl": "publicRead"})
    assert ids(check_settings(adapter)) == ["E001"]
    assert ids(check_connectivity(adapter, None)) == ["E015", "I011"]


def test_a_public_bucket_iam_policy_is_an_error(make_app, gcs_config, gcs_proxy, gcs_bucket):
    adapter = adapter_for(make_app, gcs_config)
    policy = {
        "version": 3,
        "bindings": [{"role": "roles/storage.objectViewer", "members": ["allUsers", "projectViewer:p"]}],
    }
    gcs_proxy.inject(bucket_answer(gcs_bucket, uniform=True))
    gcs_proxy.inject(
        Fault(
            200,
            json.dumps(policy).encode(),
            (("Content-Type", "application/json"),),
            matches=lambda request: request.path == f"/storage/v1/b/{gcs_bucket}/iam",
        )
    )
    messages = check_connectivity(adapter, None)
    assert ids(messages) == ["E015"]
    assert "roles/storage.objectViewer" in messages[0].msg


def test_rejected_credentials_are_an_error(make_app, gcs_config, gcs_proxy):
    adapter = adapter_for(make_app, gcs_config)
    gcs_proxy.inject(gcs_error(401, "authError", method="GET"))
    messages = check_connectivity(adapter, None)
    assert ids(messages) == ["E011"]


def test_missing_list_permission_warns(make_app, gcs_config, gcs_proxy):
    adapter = adapter_for(make_app, gcs_config)
    gcs_proxy.inject(gcs_error(403, "forbidden", method="GET"))
    messages = check_connectivity(adapter, None)
    assert ids(messages) == ["W010", "I011"]
    assert "storage.objects.list" in messages[0].msg


def test_unreadable_bucket_settings_are_reported(make_app, gcs_config, gcs_proxy, gcs_bucket):
    adapter = adapter_for(make_app, gcs_config)
    unreadable = gcs_error(403, "forbidden")
    unreadable.matches = lambda request: (
        request.method == "GET" and request.path == f"/storage/v1/b/{gcs_bucket}"
    )
    gcs_proxy.inject(unreadable)
    messages = check_connectivity(adapter, DAY)
    assert ids(messages) == ["I010"]
    assert "HTTP 403 Forbidden" in messages[0].msg
