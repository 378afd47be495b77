"""The private google-cloud-storage APIs of internals.py, checked on the installed version.

Each test names the API it checks: when google-cloud-storage changes one,
this fails loudly here instead of quietly in production.
"""

from __future__ import annotations

import inspect
import sys
from importlib.metadata import version

import pytest

pytest.importorskip("google.cloud.storage")

from google.auth.credentials import AnonymousCredentials
from google.cloud.storage import Blob, Bucket, Client

from django_storage_celery_results_gcs import internals


@pytest.fixture
def client():
    return Client(
        project="test", credentials=AnonymousCredentials(), client_options={"api_endpoint": "http://x"}
    )


def test_the_installed_version_is_a_3x_release():
    major = int(version("google-cloud-storage").split(".")[0])
    assert major == 3, f"google-cloud-storage {version('google-cloud-storage')}: internals.py targets 3.x"


def test_blob_do_multipart_upload_takes_the_keywords_we_pass():
    api = "google.cloud.storage.Blob._do_multipart_upload"
    assert hasattr(Blob, "_do_multipart_upload"), f"{api} is gone"
    parameters = inspect.signature(Blob._do_multipart_upload).parameters
    missing = [name for name in internals.MULTIPART_UPLOAD_KEYWORDS if name not in parameters]
    assert not missing, f"{api} no longer takes {missing}"
    required = [
        name
        for name, parameter in parameters.items()
        if name != "self"
        and parameter.default is inspect.Parameter.empty
        and parameter.kind is not inspect.Parameter.VAR_KEYWORD
        and name not in internals.MULTIPART_UPLOAD_KEYWORDS
    ]
    assert not required, f"{api} now requires {required}"


def test_client_bucket_metadata_cache_exists(client):
    api = "google.cloud.storage.Client._bucket_metadata_cache"
    assert hasattr(client, "_bucket_metadata_cache"), f"{api} is gone: background bucket lookups are back on"
    internals.disable_bucket_metadata_lookups(client)
    assert client._bucket_metadata_cache is None


def test_client_http_is_an_authorized_requests_session(client):
    import requests

    session = internals.authorized_session(client)
    assert isinstance(session, requests.Session), (
        "google.cloud.storage.Client._http is not a requests session"
    )
    assert callable(session.request)


def test_bucket_properties_hold_the_raw_lifecycle_rules(client):
    api = "google.cloud.storage.Bucket._properties"
    bucket = Bucket(client, "results")
    rule = {"action": {"type": "Delete"}, "condition": {"age": 3, "matchesPrefix": ["celery-results/"]}}
    bucket.lifecycle_rules = [rule]
    assert isinstance(getattr(bucket, "_properties", None), dict), f"{api} is gone"
    assert internals.raw_lifecycle_rules(bucket) == [rule], f"{api}['lifecycle']['rule'] moved"


def test_the_dependency_is_bounded_below_4():
    from pathlib import Path

    pyproject = Path(sys.modules["django_storage_celery_results_gcs"].__file__).parents[2] / "pyproject.toml"
    assert '"google-cloud-storage>=3.0,<4"' in pyproject.read_text(encoding="utf-8")
