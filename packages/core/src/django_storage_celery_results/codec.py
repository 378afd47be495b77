"""Result compression that works the same on every supported Celery.

Celery 5.7 compresses results in its base backend; older releases ignore
``result_compression`` for key-value stores. Doing it here, in Celery 5.7's
in-band format (marker + content type + NUL + body), means every supported
Celery writes and reads the same bytes.
"""

from __future__ import annotations

from kombu.compression import compress, decompress, get_encoder
from kombu.compression import encoders as compression_encoders

from .exceptions import ImproperlyConfigured

COMPRESSED_MARKER = b"\x00celery-compressed\x00"


def check_compression(method: str | None) -> str | None:
    if not method:
        return None
    try:
        get_encoder(method)
    except KeyError:
        raise ImproperlyConfigured(
            f"result_compression = {method!r} is not a known compression; "
            f"choose one of {', '.join(sorted(compression_encoders()))}"
        ) from None
    return method


def pack(payload: bytes, method: str | None) -> bytes:
    if not method:
        return payload
    body, content_type = compress(payload, method)
    return b"".join([COMPRESSED_MARKER, content_type.encode("utf-8"), b"\x00", body])


def unpack(payload: bytes) -> bytes:
    """Undo pack(); payloads without the marker are returned unchanged."""
    if not payload.startswith(COMPRESSED_MARKER):
        return payload
    content_type, _, body = payload[len(COMPRESSED_MARKER) :].partition(b"\x00")
    return decompress(body, content_type.decode("utf-8"))
