"""What only the S3 provider does, against a real moto server counted by a proxy in front of it.

The contract every object store keeps runs for S3 in test_object_stores.py.
"""

from __future__ import annotations

from celery import states

from support.faults import xml_error

# -- request budgets -----------------------------------------------------------


def test_forbidden_read_of_a_missing_key_is_pending(s3_app, s3_proxy):
    # without s3:ListBucket, S3 answers 403 AccessDenied for a missing key
    s3_proxy.inject(xml_error(403, "AccessDenied", method="GET"))
    assert s3_app.backend.get_task_meta("never-stored", cache=False)["status"] == states.PENDING


# -- objects as S3 sees them ---------------------------------------------------


def test_object_parameters_of_the_storage_apply(make_app, s3_config, s3_raw, s3_bucket):
    params = {"ServerSideEncryption": "AES256", "StorageClass": "STANDARD_IA", "Metadata": {"team": "a"}}
    app = make_app(result_storage="s3", result_storage_config={**s3_config, "object_parameters": params})
    app.backend.store_result("task-1", 1, states.SUCCESS)
    head = s3_raw.head_object(Bucket=s3_bucket, Key="celery-results/celery-task-meta-task-1")
    assert head["ServerSideEncryption"] == "AES256"
    assert head["StorageClass"] == "STANDARD_IA"
    assert head["Metadata"] == {"team": "a"}


# -- configuration ---------------------------------------------------------------


def test_a_public_media_acl_does_not_reach_results(make_app, settings, s3_config, s3_raw, s3_bucket):
    settings.AWS_DEFAULT_ACL = "public-read"
    app = make_app(result_storage="s3", result_storage_config=s3_config)
    app.backend.store_result("task-1", 1, states.SUCCESS)
    grants = s3_raw.get_object_acl(Bucket=s3_bucket, Key="celery-results/celery-task-meta-task-1")["Grants"]
    assert all("URI" not in grant["Grantee"] for grant in grants)


# -- expiry --------------------------------------------------------------------


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


# -- faults --------------------------------------------------------------------
