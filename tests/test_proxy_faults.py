"""The fault proxy itself, on moto through raw boto3: each kind of fault does
what the fault tests rely on (the store acted or not, the client saw what).

botocore makes a second attempt even with max_attempts=1 for a lost
connection, so the faults that must reach the caller match every attempt."""

from __future__ import annotations

import socket
import time
from urllib.parse import urlsplit

import pytest
from botocore.exceptions import ClientError

from support.faults import Fault, lost_answer
from support.stores.s3 import s3_client

EVERY = 10


def _put(request) -> bool:
    return request.method == "PUT"


def fresh_client(s3_proxy, **config):
    from botocore.config import Config

    return s3_client(s3_proxy.url, Config(**config))


def test_a_lost_answer_leaves_the_write_applied(s3_proxy, s3_store, s3_raw):
    client = fresh_client(s3_proxy, retries={"max_attempts": 1, "mode": "standard"})
    s3_proxy.inject(lost_answer(_put, times=EVERY))
    with pytest.raises(Exception):  # noqa: B017 - botocore names a reset several ways
        client.put_object(Bucket=s3_store.bucket, Key="k", Body=b"written")
    assert s3_raw.get_object(Bucket=s3_store.bucket, Key="k")["Body"].read() == b"written"


def test_a_retried_create_whose_first_answer_was_lost_is_refused(s3_proxy, s3_store, s3_raw):
    client = fresh_client(s3_proxy, retries={"max_attempts": 3, "mode": "standard"})
    s3_proxy.inject(lost_answer(_put))
    with s3_proxy.counting() as seen, pytest.raises(ClientError) as refused:
        client.put_object(Bucket=s3_store.bucket, Key="k", Body=b"mine", IfNoneMatch="*")
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    assert [r.method for r in seen] == ["PUT", "PUT"]
    assert s3_raw.get_object(Bucket=s3_store.bucket, Key="k")["Body"].read() == b"mine"


def test_an_answer_replaced_after_forwarding(s3_proxy, s3_store, s3_raw):
    client = fresh_client(s3_proxy, retries={"max_attempts": 1, "mode": "standard"})
    s3_proxy.inject(Fault(500, matches=_put, after_forward=True, times=EVERY))
    with pytest.raises(ClientError):
        client.put_object(Bucket=s3_store.bucket, Key="k", Body=b"applied")
    assert s3_raw.get_object(Bucket=s3_store.bucket, Key="k")["Body"].read() == b"applied"


def test_a_cut_body_is_a_short_read(s3_proxy, s3_store, s3_raw):
    s3_raw.put_object(Bucket=s3_store.bucket, Key="k", Body=b"x" * 1000)
    client = fresh_client(s3_proxy, retries={"max_attempts": 1, "mode": "standard"})
    s3_proxy.inject(Fault(0, matches=lambda r: r.method == "GET", cut=True, times=EVERY))
    with pytest.raises(Exception) as cut:
        client.get_object(Bucket=s3_store.bucket, Key="k")["Body"].read()
    assert "IncompleteRead(500 bytes read, 500 more expected)" in str(cut.value)


def test_a_delayed_answer_passes_the_read_timeout(s3_proxy, s3_store):
    from botocore.exceptions import ReadTimeoutError

    client = fresh_client(s3_proxy, retries={"max_attempts": 1, "mode": "standard"}, read_timeout=0.2)
    s3_proxy.inject(Fault(0, matches=_put, after_forward=True, delay=1.0, drop=True, times=EVERY))
    with pytest.raises(ReadTimeoutError):
        client.put_object(Bucket=s3_store.bucket, Key="k", Body=b"late")


def test_stripped_conditions_let_a_refused_write_through(s3_proxy, s3_store, s3_raw):
    s3_raw.put_object(Bucket=s3_store.bucket, Key="k", Body=b"first")
    client = fresh_client(s3_proxy, retries={"max_attempts": 1, "mode": "standard"})
    s3_proxy.inject(Fault(0, matches=_put, strip_conditions=True))
    client.put_object(Bucket=s3_store.bucket, Key="k", Body=b"second", IfNoneMatch="*")
    assert s3_raw.get_object(Bucket=s3_store.bucket, Key="k")["Body"].read() == b"second"


@pytest.mark.parametrize(
    "head, sent",
    [
        ("Content-Length: 1000", b"x" * 500),
        ("Transfer-Encoding: chunked", b"3e8\r\n" + b"x" * 500),
    ],
    ids=["content-length", "chunked"],
)
def test_a_body_cut_short_by_a_dying_client_is_not_forwarded(s3_proxy, s3_store, s3_raw, head, sent):
    """A worker SIGKILLed mid-upload: a store never applies half a request,
    so the proxy must not forward the half it received."""
    parts = urlsplit(s3_proxy.url)
    request = f"PUT /{s3_store.bucket}/half HTTP/1.1\r\nHost: {parts.netloc}\r\n{head}\r\n\r\n"
    with s3_proxy.counting() as seen:
        with socket.create_connection((parts.hostname, parts.port)) as conn:
            conn.sendall(request.encode())
            conn.sendall(sent)
        time.sleep(0.5)  # the proxy's handler thread sees the close
    assert seen == []
    listed = s3_raw.list_objects_v2(Bucket=s3_store.bucket, Prefix="half")
    assert listed.get("KeyCount") == 0
