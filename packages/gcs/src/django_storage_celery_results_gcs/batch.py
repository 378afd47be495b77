"""Deleting up to 100 objects in one request: the GCS JSON API batch endpoint.

The request is the one GCS documents ("Sending batch requests"): a
``multipart/mixed`` POST to ``/batch/storage/v1`` whose parts are each
``Content-Type: application/http`` with an optional ``Content-ID`` and a
nested request carrying only the path of its URL. GCS answers each part in
order and echoes a part's ``Content-ID`` as ``response-<id>``; the parts
here are numbered, so every answer is matched to its key by that id, not by
position. google-cloud-storage's own ``client.batch()`` would be the same
number of requests but differs on what real GCS needs: it puts full URLs in
the nested requests (which the documentation calls undefined behaviour),
sends no ``Content-ID`` (so fake-gcs-server skips the parts and its answers
cannot be matched), raises only the last failure, and takes up to 1,000
calls where GCS takes 100.
"""

from __future__ import annotations

import email
import email.message
import uuid
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from google.api_core import exceptions

from .internals import authorized_session

#: GCS takes at most this many calls in one batch request.
BATCH_LIMIT = 100


def delete_objects(
    client: Any, bucket_name: str, keys: Sequence[str], timeout: tuple[float, float]
) -> list[tuple[str, int]]:
    """Delete up to BATCH_LIMIT objects in one request; the (key, HTTP status) of each
    deletion that failed, a missing object (404) not counted as a failure."""
    if len(keys) > BATCH_LIMIT:
        raise ValueError(f"a GCS batch takes at most {BATCH_LIMIT} calls, not {len(keys)}")
    boundary = f"celery-results-{uuid.uuid4().hex}"
    bucket_path = f"/storage/v1/b/{quote(bucket_name, safe='')}/o/"
    parts = [
        f"--{boundary}\r\nContent-Type: application/http\r\nContent-ID: <{number}>\r\n\r\n"
        f"DELETE {bucket_path}{quote(key, safe='')} HTTP/1.1\r\n\r\n\r\n"
        for number, key in enumerate(keys)
    ]
    content_type = f"multipart/mixed; boundary={boundary}"
    response = authorized_session(client).request(
        "POST",
        f"{client.api_endpoint}/batch/storage/v1",
        data="".join([*parts, f"--{boundary}--\r\n"]).encode("utf-8"),
        headers={"Content-Type": content_type},
        timeout=timeout,
    )
    if not 200 <= response.status_code < 300:
        raise exceptions.from_http_response(response)
    statuses = _statuses(response.headers.get("Content-Type", ""), response.content)
    failed = []
    for number, key in enumerate(keys):
        status = statuses.get(str(number), 0)  # 0: no answer for this part
        if not (200 <= status < 300 or status == 404):
            failed.append((key, status))
    return failed


def _statuses(content_type: str, body: bytes) -> dict[str, int]:
    """Content-ID -> HTTP status of each answer in a multipart/mixed batch response."""
    message = email.message_from_bytes(f"Content-Type: {content_type}\r\n\r\n".encode() + body)
    statuses = {}
    for part in message.get_payload() if message.is_multipart() else ():
        assert isinstance(part, email.message.Message)
        content_id = str(part.get("Content-ID", "")).strip("<>").removeprefix("response-")
        status_line = str(part.get_payload()).lstrip().split("\n", 1)[0].split()
        if len(status_line) >= 2 and status_line[1].isdigit():
            statuses[content_id] = int(status_line[1])
    return statuses
