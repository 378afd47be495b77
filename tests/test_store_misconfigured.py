"""A missing bucket or container, or credentials that may not read, is an error naming the
bucket and its setting on every object store, never a result that reads as PENDING.

Unit level, through the backend against each emulator; the same with a real
worker is in test_store_misconfigured_e2e.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from celery import states

from django_storage_celery_results.exceptions import ImproperlyConfigured, ResultStoreMisconfigured
from support.faults import xml_error
from support.processes import EmulatorProcess
from support.proxy import CountingProxy
from support.stores.azure import AZURITE_KEY, azurite_connection_string
from support.stores.s3 import S3_CREDENTIALS, start_moto

MISSING = "no-such-results-bucket"
#: The config key and the Django setting each store's error must name.
SETTINGS = {
    "s3": ("bucket_name", "AWS_STORAGE_BUCKET_NAME"),
    "gcs": ("bucket_name", "GS_BUCKET_NAME"),
    "azure": ("azure_container", "AZURE_CONTAINER"),
}


@pytest.fixture(params=["s3", "gcs", "azure"])
def missing_bucket_app(request, make_app):
    preset = request.param
    key, _setting = SETTINGS[preset]
    config = {**request.getfixturevalue(f"{preset}_config"), key: MISSING}
    return preset, make_app(result_storage=preset, result_storage_config=config)


def names_the_bucket(preset: str) -> str:
    key, setting = SETTINGS[preset]
    return rf"'{MISSING}' does not exist.*CELERY_RESULT_STORAGE_CONFIG\['{key}'\] / {setting}"


def test_reading_from_a_missing_bucket_is_an_error_not_pending(missing_bucket_app):
    preset, app = missing_bucket_app
    with pytest.raises(ResultStoreMisconfigured, match=names_the_bucket(preset)) as raised:
        app.AsyncResult("never-stored").get(timeout=10, interval=0.1)
    assert isinstance(raised.value, ImproperlyConfigured)
    assert S3_CREDENTIALS["secret_key"] not in str(raised.value) and AZURITE_KEY not in str(raised.value)


def test_writing_to_a_missing_bucket_is_an_error_naming_it(missing_bucket_app):
    preset, app = missing_bucket_app
    with pytest.raises(ResultStoreMisconfigured, match=names_the_bucket(preset)):
        app.backend.store_result("task-1", 42, states.SUCCESS)


def test_the_error_is_never_retried(missing_bucket_app):
    _preset, app = missing_bucket_app
    with pytest.raises(ResultStoreMisconfigured) as raised:
        app.backend.store_result("task-1", 42, states.SUCCESS)
    assert not app.backend.exception_safe_to_retry(raised.value)


def test_the_error_survives_pickling_between_processes(missing_bucket_app):
    import pickle

    _preset, app = missing_bucket_app
    with pytest.raises(ResultStoreMisconfigured) as raised:
        app.backend.store_result("task-1", 42, states.SUCCESS)
    copy = pickle.loads(pickle.dumps(raised.value))
    assert isinstance(copy, ResultStoreMisconfigured) and str(copy) == str(raised.value)


def test_gcs_pays_one_listing_per_process_to_tell_a_missing_bucket(make_app, gcs_config, gcs_proxy):
    # a 404 is trusted once the bucket answered; before that the second 404 costs one listing
    app = make_app(result_storage="gcs", result_storage_config=gcs_config)
    with gcs_proxy.counting() as seen:
        for _ in range(4):
            assert app.backend.get_task_meta("never-stored", cache=False)["status"] == states.PENDING
    assert [request.method for request in seen] == ["GET"] * 5
    assert sum(request.path.endswith("/o") for request in seen) == 1


def test_azure_rejected_credentials_are_an_error(make_app, azurite, azure_container):

    wrong = "V3JvbmdLZXlXcm9uZ0tleVdyb25nS2V5V3JvbmdLZXk="
    config = {
        "connection_string": azurite_connection_string(azurite.url, key=wrong),
        "azure_container": azure_container,
        "client_options": {"retry_total": 0},
    }
    app = make_app(result_storage="azure", result_storage_config=config)
    with pytest.raises(ResultStoreMisconfigured, match="rejected the credentials") as raised:
        app.backend.get_task_meta("task-1", cache=False)
    assert wrong not in str(raised.value)


# -- S3 without s3:ListBucket: a missing key answers 403 ---------------------------


@pytest.fixture(scope="module")
def guarded_s3(moto_server) -> Iterator[tuple[CountingProxy, dict[str, dict[str, str]]]]:
    """A moto server that checks IAM policies (after its nine setup calls), behind a counting proxy."""
    import boto3

    server: EmulatorProcess = start_moto(INITIAL_NO_AUTH_ACTION_COUNT="9")
    setup = {"aws_access_key_id": "x", "aws_secret_access_key": "y", "region_name": "us-east-1"}
    iam = boto3.client("iam", endpoint_url=server.url, **setup)
    users = {}
    for name, actions in {
        "all": ["s3:*"],
        "no-list": ["s3:GetObject", "s3:PutObject"],
        "no-read": ["s3:ListBucket", "s3:PutObject"],
    }.items():
        policy = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}],
        }
        iam.create_user(UserName=name)
        iam.put_user_policy(UserName=name, PolicyName="results", PolicyDocument=json.dumps(policy))
        key = iam.create_access_key(UserName=name)["AccessKey"]
        users[name] = {"access_key": key["AccessKeyId"], "secret_key": key["SecretAccessKey"]}
    everything = users["all"]
    boto3.client(
        "s3",
        endpoint_url=server.url,
        region_name="us-east-1",
        aws_access_key_id=everything["access_key"],
        aws_secret_access_key=everything["secret_key"],
    ).create_bucket(Bucket="guarded")
    with CountingProxy(server.url) as proxy:
        yield proxy, users
    server.stop()


def guarded_app(make_app, proxy: CountingProxy, credentials: dict):
    config = {"bucket_name": "guarded", "endpoint_url": proxy.url, "region_name": "us-east-1", **credentials}
    return make_app(result_storage="s3", result_storage_config=config)


def test_without_list_permission_a_forbidden_missing_key_stays_pending_at_one_extra_request(
    make_app, guarded_s3
):
    proxy, users = guarded_s3
    app = guarded_app(make_app, proxy, users["no-list"])
    # S3 answers a missing key with 403 AccessDenied to credentials without s3:ListBucket
    proxy.inject(xml_error(403, "AccessDenied", method="GET")).times = 2
    with proxy.counting() as seen:
        assert app.backend.get_task_meta("never-stored", cache=False)["status"] == states.PENDING
    assert len(seen) == 2  # the read, and once per process the listing that is refused too
    with proxy.counting() as seen:
        assert app.backend.get_task_meta("never-stored", cache=False)["status"] == states.PENDING
    assert len(seen) == 1


def test_credentials_that_may_not_read_are_an_error_once_the_result_exists(make_app, guarded_s3):
    proxy, users = guarded_s3
    app = guarded_app(make_app, proxy, users["no-read"])
    assert app.backend.get_task_meta("task-1", cache=False)["status"] == states.PENDING  # truly missing
    app.backend.store_result("task-1", 42, states.SUCCESS)
    with pytest.raises(ResultStoreMisconfigured, match=r"may not read results in the bucket 'guarded'"):
        app.AsyncResult("task-1").get(timeout=10, interval=0.1)


@pytest.mark.parametrize("wrong", ["access_key", "secret_key"])
def test_rejected_s3_credentials_are_an_error(make_app, guarded_s3, wrong):
    proxy, users = guarded_s3
    credentials = {**users["all"], wrong: "WRONG" + users["all"][wrong][5:]}
    app = guarded_app(make_app, proxy, credentials)
    with pytest.raises(
        ResultStoreMisconfigured, match=r"rejected the credentials for the bucket 'guarded'"
    ) as err:
        app.backend.get_task_meta("task-1", cache=False)
    assert credentials["secret_key"] not in str(err.value)
