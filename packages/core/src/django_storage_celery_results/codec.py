"""Result compression that works the same on every supported Celery.

Celery 5.7 compresses results in its base backend; older releases ignore
``result_compression`` for key-value stores. Doing it here, in Celery 5.7's
in-band format (marker + content type + NUL + body), means every supported
Celery writes and reads the same bytes.
"""

from __future__ import annotations

import bz2
import lzma
import zlib
from typing import Any

from kombu.compression import compress, decompress

from .adapters import Content
from .exceptions import StoredObjectTooLarge

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


def unpack(payload: bytes, limit: int | None = None) -> bytes:
    """Undo pack(); payloads without the marker are returned unchanged.

    With a limit, a body that expands past it raises StoredObjectTooLarge
    after at most limit + 1 bytes were produced: a few stored bytes can
    expand to gigabytes, so the expansion is never made whole first.
    """
    if not payload.startswith(COMPRESSED_MARKER):
        return payload
    content_type, _, body = payload[len(COMPRESSED_MARKER) :].partition(b"\x00")
    kind = content_type.decode("utf-8")
    if limit is None:
        return decompress(body, kind)
    return _decompress_at_most(body, kind, limit)


def _decompressor(kind: str) -> Any:
    """An incremental decompressor whose decompress(data, max_length) bounds its
    output, with eof (zlib's, bz2's, lzma's, zstd's of PEP 784), or None."""
    if kind == "application/x-gzip":  # kombu's "gzip" and "zlib" are both zlib.compress
        return zlib.decompressobj()
    if kind == "application/x-bz2":
        return bz2.BZ2Decompressor()
    if kind == "application/x-lzma":
        return lzma.LZMADecompressor()
    if kind == "application/zstd":
        zstd = _zstd_module()
        if zstd is not None:
            return zstd.ZstdDecompressor()
    return None


def _zstd_module() -> Any:
    """The zstd module kombu compresses with (Python 3.14's or its backport), if any."""
    for name in ("compression.zstd", "backports.zstd"):
        try:
            return __import__(name, fromlist=["ZstdDecompressor"])
        except ImportError:
            continue
    return None


def _decompress_at_most(body: bytes, kind: str, limit: int) -> bytes:
    decompressor = _decompressor(kind)
    if decompressor is not None:
        data = decompressor.decompress(body, limit + 1)
        if len(data) > limit:
            raise StoredObjectTooLarge(None)
        if not decompressor.eof:
            raise ValueError(f"the {kind} body ends before its compressed stream does")
        return data
    if kind == "application/x-brotli":
        return _brotli_at_most(body, limit)
    raise ValueError(f"no bounded decompressor for {kind!r}")


def _brotli_at_most(body: bytes, limit: int) -> bytes:
    try:
        import brotli
    except ImportError:
        import brotlicffi as brotli  # what kombu uses on PyPy
    decompressor = brotli.Decompressor()
    try:  # brotli 1.2 bounds each call's output
        data = decompressor.process(body, output_buffer_limit=limit + 1)
    except TypeError:
        raise ValueError(
            "brotli older than 1.2 cannot bound what it decompresses: upgrade it (pip install 'brotli>=1.2')"
        ) from None
    if len(data) > limit:
        raise StoredObjectTooLarge(None)
    if not decompressor.is_finished():
        raise ValueError("the brotli body ends before its compressed stream does")
    return data


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
