"""Result compression that works the same on every supported Celery.

Celery 5.7 compresses results in its base backend; older releases ignore
``result_compression`` for key-value stores. Doing it here, in Celery 5.7's
in-band format (marker + content type + NUL + body), means every supported
Celery writes and reads the same bytes.
"""

from __future__ import annotations

from kombu.compression import compress, decompress

from .adapters import Content

COMPRESSED_MARKER = b"\x00celery-compressed\x00"
OCTET_STREAM = "application/octet-stream"

#: kombu's compression content types that HTTP can name as a Content-Encoding.
#: kombu's "gzip"/"zlib" is zlib.compress, which HTTP calls "deflate".
_HTTP_ENCODINGS = {
    "application/x-gzip": "deflate",
    "application/x-brotli": "br",
    "application/zstd": "zstd",
}
_KOMBU_CONTENT_TYPES = {token: content_type for content_type, token in _HTTP_ENCODINGS.items()}


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


def label(payload: bytes, content_type: str) -> tuple[bytes, Content]:
    """The bytes to store and their labels, for stores that keep Content labels.

    A result compressed with an encoding HTTP knows is stored as the plain
    compressed body with that Content-Encoding, so a console or browser shows
    it decoded; other compressions stay in the in-band format.
    """
    if not payload.startswith(COMPRESSED_MARKER):
        return payload, Content(content_type)
    kombu_type, _, body = payload[len(COMPRESSED_MARKER) :].partition(b"\x00")
    encoding = _HTTP_ENCODINGS.get(kombu_type.decode("utf-8"))
    if encoding is None:
        return payload, Content(OCTET_STREAM)
    return body, Content(content_type, encoding)


def unlabel(data: bytes, content_encoding: str | None) -> bytes:
    """Undo label(): the in-band form of a stored object, for unpack()."""
    if not content_encoding or content_encoding == "identity":
        return data
    kombu_type = _KOMBU_CONTENT_TYPES.get(content_encoding)
    if kombu_type is None:
        raise ValueError(f"result stored with an unsupported Content-Encoding {content_encoding!r}")
    return b"".join([COMPRESSED_MARKER, kombu_type.encode("utf-8"), b"\x00", data])
