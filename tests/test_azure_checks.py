"""The Azure provider's checks against Azurite: settings, connectivity, public access, expiry."""

from __future__ import annotations

import pytest

from django_storage_celery_results.config import resolve
from django_storage_celery_results_azure import check_connectivity, check_settings
from support.faults import Fault
from support.processes import free_port
from support.stores.azure import azure_error, azurite_connection_string, calls, no_sdk_retries


def connectivity(make_app, config, expires=None):

    adapter = make_app(result_storage="azure", result_storage_config=no_sdk_retries(config)).backend.adapter
    return check_connectivity(adapter, expires)


def test_a_healthy_container_passes_the_connectivity_check(make_app, azure_config, azure_proxy):
    with azure_proxy.counting() as seen:
        assert connectivity(make_app, azure_config) == []
    assert calls(seen) == [
        "GET",  # the container's properties
        "PUT if-none-match=*",  # the probe blob
        "GET",
        "PUT if-none-match=*",  # must fail: it exists
        "PUT if-match",  # must fail: another ETag
        "DELETE",
        "PUT",  # a probe append blob: chords count with appends
        "PUT?comp=appendblock",
        "DELETE",
    ]


def test_check_reports_a_store_that_cannot_append(make_app, azure_config, azure_proxy):
    """An Azure-compatible store without append blobs stores results, but chords
    could not count their header tasks: the check says so."""
    refused = azure_error(501, "NotImplemented")
    refused.matches = lambda request: request.method == "PUT" and "comp=appendblock" in request.query
    azure_proxy.inject(refused)
    messages = connectivity(make_app, azure_config)
    assert [m.id for m in messages] == ["django_storage_celery_results_azure.E013"]
    assert "appending to the probe append blob" in messages[0].msg
    assert "Append Block" in messages[0].hint


def test_check_reports_bad_credentials_without_showing_them(make_app, azurite, azure_config):
    wrong = "V3JvbmdLZXlXcm9uZ0tleVdyb25nS2V5V3JvbmdLZXk="
    messages = connectivity(
        make_app, {**azure_config, "connection_string": azurite_connection_string(azurite.url, key=wrong)}
    )
    assert [m.id for m in messages] == ["django_storage_celery_results_azure.E011"]
    assert "rejected the credentials" in messages[0].msg
    assert "AZURE_ACCOUNT_KEY" in messages[0].hint
    assert wrong not in f"{messages[0].msg} {messages[0].hint}"


def test_check_reports_an_unreachable_endpoint(make_app, azure_config):
    endpoint = f"http://127.0.0.1:{free_port()}"
    messages = connectivity(
        make_app, {**azure_config, "connection_string": azurite_connection_string(endpoint)}
    )
    assert [m.id for m in messages] == ["django_storage_celery_results_azure.E012"]
    assert "BlobEndpoint" in messages[0].hint


def test_check_reports_a_public_container(make_app, azure_config, azure_raw):
    azure_raw.set_container_access_policy(signed_identifiers={}, public_access="blob")
    messages = connectivity(make_app, azure_config)
    assert [m.id for m in messages] == ["django_storage_celery_results_azure.E015"]
    assert "public access level is 'blob'" in messages[0].msg
    assert "--public-access off" in messages[0].hint


def test_check_reports_ignored_etag_conditions(make_app, azure_config, azure_proxy):
    ignored = Fault(
        201,
        headers=(("ETag", '"0x1"'),),
        matches=lambda request: request.method == "PUT" and "if-match" in request.headers,
    )
    azure_proxy.inject(ignored)
    messages = connectivity(make_app, azure_config)
    assert [m.id for m in messages] == ["django_storage_celery_results_azure.E014"]
    assert "ignores If-Match on Put Blob" in messages[0].msg


def test_check_explains_how_to_expire_results(make_app, azure_config):
    messages = connectivity(make_app, azure_config, expires=86400.0)
    assert [m.id for m in messages] == ["django_storage_celery_results_azure.I012"]
    assert "management plane" in messages[0].msg
    assert "lifecycle_policy" in messages[0].hint and "celery beat" in messages[0].hint


class UnusedTokenCredential:
    """Stands for DefaultAzureCredential() where no request is made."""

    def get_token(self, *scopes, **options):
        raise AssertionError("a settings check must not ask for a token")


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        (
            {
                "connection_string": "DefaultEndpointsProtocol=http;AccountName=a;AccountKey=a2V5;"
                "EndpointSuffix=example.com"
            },
            "W001",
        ),
        ({"account_name": "a"}, "W002"),
        ({"account_name": "a", "token_credential": UnusedTokenCredential()}, None),
    ],
    ids=["plain-http", "anonymous", "token-credential"],
)
def test_settings_checks_need_no_request(config, expected):

    conf = {"result_storage": "azure", "result_storage_config": {**config, "azure_container": "c"}}
    messages = check_settings(resolve(conf).build_adapter())
    assert [m.id for m in messages] == (
        [f"django_storage_celery_results_azure.{expected}"] if expected else []
    )
