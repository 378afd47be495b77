"""The S3 provider's checks against moto: settings, connectivity, lifecycle, access."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from botocore.config import Config

from django_storage_celery_results_s3 import check_connectivity, check_settings, ensure_lifecycle_rule
from support.faults import Fault
from support.processes import EmulatorProcess, free_port
from support.stores.s3 import S3_CREDENTIALS, start_moto

DAY = 86400


def ids(messages) -> list[str]:
    return [message.id.rsplit(".", 1)[1] for message in messages]


def adapter_for(make_app, config: dict, **conf):
    return make_app(result_storage="s3", result_storage_config=config, **conf).backend.adapter


def test_a_healthy_store_with_a_lifecycle_rule_passes(make_app, s3_config):
    adapter = adapter_for(make_app, s3_config)
    ensure_lifecycle_rule(adapter, DAY)
    assert check_settings(adapter) == []
    assert check_connectivity(adapter, DAY) == []


def test_the_probe_asks_only_the_bucket(make_app, s3_config, s3_bucket, s3_proxy):
    with s3_proxy.counting() as seen:
        check_connectivity(adapter_for(make_app, s3_config), None)
    assert all(request.path.startswith(f"/{s3_bucket}") for request in seen)


def test_a_missing_lifecycle_rule_warns(make_app, s3_config):
    messages = check_connectivity(adapter_for(make_app, s3_config), DAY)
    assert ids(messages) == ["W011"]
    assert "celery.backend_cleanup" in messages[0].hint


def test_a_lifecycle_rule_for_another_expiry_warns(make_app, s3_config):
    adapter = adapter_for(make_app, s3_config)
    ensure_lifecycle_rule(adapter, 7 * DAY)
    messages = check_connectivity(adapter, DAY)
    assert ids(messages) == ["W012"]
    assert "after 7 days" in messages[0].msg


def test_an_unreachable_endpoint_is_an_error(make_app, s3_config):
    config = {
        **s3_config,
        "endpoint_url": f"http://127.0.0.1:{free_port()}",
        "client_config": Config(retries={"max_attempts": 1}, connect_timeout=2),
    }
    messages = check_connectivity(adapter_for(make_app, config), DAY)
    assert ids(messages) == ["E012"]


def test_a_store_ignoring_if_match_is_an_error(make_app, s3_config, s3_proxy):
    adapter = adapter_for(make_app, s3_config)
    ignoring = Fault(200, headers=(("ETag", '"x"'),), matches=lambda r: "if-match" in r.headers)
    s3_proxy.inject(ignoring)
    messages = check_connectivity(adapter, None)
    assert ids(messages) == ["E014"]
    assert "If-Match" in messages[0].msg


def test_a_public_acl_is_an_error_before_and_after_writing(make_app, s3_config):
    adapter = adapter_for(make_app, {**s3_config, "default_acl": "public-read"})
    assert ids(check_settings(adapter)) == ["E001"]
    assert ids(check_connectivity(adapter, None)) == ["E015"]


# -- real credentials: moto with authentication on -------------------------------


@pytest.fixture(scope="module")
def authenticating_s3(moto_server) -> Iterator[tuple[EmulatorProcess, dict, dict]]:
    """A moto server that checks signatures and IAM policies after six setup calls."""
    import boto3

    server = start_moto(INITIAL_NO_AUTH_ACTION_COUNT="6")
    setup = {"aws_access_key_id": "x", "aws_secret_access_key": "y", "region_name": "us-east-1"}
    iam = boto3.client("iam", endpoint_url=server.url, **setup)

    def user(name: str, actions: list[str]) -> dict[str, str]:
        statement = {"Effect": "Allow", "Action": actions, "Resource": "*"}
        iam.create_user(UserName=name)
        iam.put_user_policy(
            UserName=name,
            PolicyName="results",
            PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [statement]}),
        )
        key = iam.create_access_key(UserName=name)["AccessKey"]
        return {"access_key": key["AccessKeyId"], "secret_key": key["SecretAccessKey"]}

    full = user("full", ["s3:*"])
    without_list = user("no-list", ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:GetObjectAcl"])
    boto3.client(
        "s3",
        endpoint_url=server.url,
        aws_access_key_id=full["access_key"],
        aws_secret_access_key=full["secret_key"],
        region_name="us-east-1",
    ).create_bucket(Bucket="guarded")
    yield server, full, without_list
    server.stop()


def guarded_config(server: EmulatorProcess, credentials: dict) -> dict:
    return {"bucket_name": "guarded", "endpoint_url": server.url, "region_name": "us-east-1", **credentials}


def test_valid_credentials_pass(make_app, authenticating_s3):
    server, full, _ = authenticating_s3
    assert ids(check_connectivity(adapter_for(make_app, guarded_config(server, full)), None)) == []


@pytest.mark.parametrize("wrong", ["access_key", "secret_key"])
def test_wrong_credentials_are_an_error(make_app, authenticating_s3, wrong):
    server, full, _ = authenticating_s3
    credentials = {**full, wrong: "WRONG" + full[wrong][5:]}
    messages = check_connectivity(adapter_for(make_app, guarded_config(server, credentials)), None)
    assert ids(messages) == ["E011"]
    assert credentials["secret_key"] not in messages[0].msg + messages[0].hint


def test_missing_list_permission_warns(make_app, authenticating_s3):
    server, _, without_list = authenticating_s3
    messages = check_connectivity(adapter_for(make_app, guarded_config(server, without_list)), None)
    assert ids(messages) == ["W010"]
    assert "s3:ListBucket" in messages[0].msg


def test_the_default_credentials_are_not_accepted_by_the_guarded_store(make_app, authenticating_s3):
    server, _, _ = authenticating_s3
    messages = check_connectivity(adapter_for(make_app, guarded_config(server, S3_CREDENTIALS)), None)
    assert ids(messages) == ["E011"]
