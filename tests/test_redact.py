"""The one redaction rule: configured secrets by value, credentials by shape."""

from __future__ import annotations

import pytest

from django_storage_celery_results.redact import Redactor, StorageError, redact, secret_values


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ftp://user:hunter2@127.0.0.1:21/results/", "ftp://user:***@127.0.0.1:21/results/"),
        ("sftp://u:p@ss:w@rd@host/x and more", "sftp://u:***@host/x and more"),
        ("https://host:8443/path?x=1", "https://host:8443/path?x=1"),
        (
            "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=c2VjcmV0PQ==;EndpointSuffix=x",
            "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=***;EndpointSuffix=x",
        ),
        (
            "Endpoint=sb://x/;SharedAccessKeyName=n;SharedAccessKey=abc123=;",
            "Endpoint=sb://x/;SharedAccessKeyName=n;SharedAccessKey=***;",
        ),
        (
            "BlobEndpoint=https://a/;SharedAccessSignature=sv=2020&sig=abc",
            "BlobEndpoint=https://a/;SharedAccessSignature=***&sig=***",
        ),
        (
            "https://a.blob/c/b?sv=2020-10-02&se=2030&sig=AbC%2Bd",
            "https://a.blob/c/b?sv=2020-10-02&se=2030&sig=***",
        ),
        (
            "https://b.s3/k?X-Amz-Credential=AKIA/x&X-Amz-Signature=deadbeef&X-Amz-Date=1",
            "https://b.s3/k?X-Amz-Credential=***&X-Amz-Signature=***&X-Amz-Date=1",
        ),
        ("GET /o?token=t0k3n&alt=media", "GET /o?token=***&alt=media"),
        ("GET /o?access_token=ya29.x", "GET /o?access_token=***"),
        (
            "using data {'user': 'u', 'passwd': 'pw', 'port': 21}",
            "using data {'user': 'u', 'passwd': '***', 'port': 21}",
        ),
        (
            '{"secret_key": "abc", "Key": "celery-task-meta-x"}',
            '{"secret_key": \'***\', "Key": "celery-task-meta-x"}',
        ),
        (
            "no secrets in celery-task-meta-1234 at s3://bucket/prefix/",
            "no secrets in celery-task-meta-1234 at s3://bucket/prefix/",
        ),
    ],
)
def test_credentials_are_hidden_by_their_shape(text, expected):
    assert redact(text) == expected


def test_configured_secrets_are_hidden_wherever_they_appear():
    options = {
        "location": "ftp://user:p%40ss-w0rd@host:21/results/",
        "params": {"username": "user", "password": "nested-s3cret"},
        "account_key": "account-key-value",
        "credentials": ["ignored", {"token": "list-token-value"}],
        "bucket_name": "my-bucket",
        "short_key": "abc",  # too short to hide everywhere: only its shapes are hidden
    }
    assert set(secret_values(options)) >= {
        "p%40ss-w0rd",
        "p@ss-w0rd",
        "nested-s3cret",
        "account-key-value",
        "list-token-value",
        "abc",
    }
    redactor = Redactor(options)
    text = "p@ss-w0rd nested-s3cret account-key-value list-token-value my-bucket abc"
    assert redactor(text) == "*** *** *** *** my-bucket abc"


class Configured:
    """A storage keeps its settings as attributes, as django-storages' do."""

    def __init__(self) -> None:
        self.location = "ftp://user:attr-s3cret@host:21/"
        self._config = {"passwd": "attr-s3cret", "user": "user"}


def test_secrets_come_from_a_storages_attributes_too():
    redactor = Redactor(Configured())
    assert redactor("login failed for attr-s3cret") == "login failed for ***"


def test_errors_are_wrapped_only_when_they_show_a_secret():
    redactor = Redactor({"password": "wrapped-s3cret"})
    harmless = FileNotFoundError("no such file")
    assert redactor.error(harmless, "reading x") is harmless
    try:
        try:
            raise ConnectionError("peer said wrapped-s3cret")
        except ConnectionError:
            raise RuntimeError("could not connect") from None
    except RuntimeError as leaking_by_context:
        context = leaking_by_context
    context.__suppress_context__ = False
    context.__context__ = ConnectionError("peer said wrapped-s3cret")
    wrapped = redactor.error(context, "reading x")
    assert isinstance(wrapped, StorageError) and wrapped.cause_type is RuntimeError
    assert str(wrapped) == "reading x: RuntimeError: could not connect"
    direct = redactor.error(ValueError("bad password wrapped-s3cret"), "writing y to Store")
    assert str(direct) == "writing y to Store: ValueError: bad password ***"
