"""Every private google-cloud-storage API this provider uses, in one place, each with why.

google-cloud-storage gives no public way to do these four things; each is a
small, stable part of its 3.x releases, checked on the installed version by
``tests/test_gcs_internals.py`` (it fails naming the API when one changes),
and the dependency is bounded below 4 in ``pyproject.toml``.
"""

from __future__ import annotations

import io
from typing import Any

from google.api_core import exceptions
from google.cloud.storage import Blob
from google.cloud.storage.exceptions import InvalidResponse

#: Blob._do_multipart_upload's keywords, as upload() passes them.
MULTIPART_UPLOAD_KEYWORDS = (
    "client",
    "stream",
    "content_type",
    "size",
    "predefined_acl",
    "if_generation_match",
    "if_generation_not_match",
    "if_metageneration_match",
    "if_metageneration_not_match",
    "retry",
)


def multipart_upload(
    blob: Blob,
    client: Any,
    data: bytes,
    content_type: str,
    acl: str | None,
    generation: int | None,
    retry: Any,
    timeout: tuple[float, float],
) -> Any:
    """One multipart upload (metadata and media in one request) with a generation precondition.

    Private because upload_from_string() switches to a resumable upload (two
    requests or more, and no precondition on the first) above 8 MiB and
    returns nothing; the multipart upload it uses below that takes any size
    in one request and answers with the object resource (its generation).
    Errors come back as the API's own exceptions (NotFound, PreconditionFailed ...).
    """
    try:
        return blob._do_multipart_upload(
            client=client,
            stream=io.BytesIO(data),
            content_type=content_type,
            size=len(data),
            predefined_acl=acl,
            if_generation_match=generation,
            if_generation_not_match=None,
            if_metageneration_match=None,
            if_metageneration_not_match=None,
            retry=retry,
            timeout=timeout,
        )
    except InvalidResponse as exc:
        raise exceptions.from_http_response(exc.response) from None


def disable_bucket_metadata_lookups(client: Any) -> None:
    """Stop this client's background bucket requests, leaving the environment alone.

    Private because google-cloud-storage 3.x fetches each bucket's metadata in
    a background request (for OpenTelemetry attributes) and re-checks the
    bucket after every 404, and the only public switch is the process-wide
    DISABLE_GCS_PYTHON_CLIENT_OTEL_BUCKET_METADATA variable, which would
    change every other client of the process too.
    """
    if getattr(client, "_bucket_metadata_cache", None) is not None:
        client._bucket_metadata_cache = None


def authorized_session(client: Any) -> Any:
    """The client's authorized requests session (its credentials and connection pool).

    Private because the client offers no public way to send a request of our
    own: the hand-built batch request (``batch.py``) goes through it.
    """
    return client._http


def raw_lifecycle_rules(bucket: Any) -> list[dict[str, Any]]:
    """The bucket's lifecycle rules as GCS sent them.

    Private because bucket.lifecycle_rules drops action types this client
    version does not know, and writing that back would delete them.
    """
    return [dict(rule) for rule in bucket._properties.get("lifecycle", {}).get("rule", ())]
