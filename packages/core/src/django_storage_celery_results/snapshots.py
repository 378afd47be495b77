"""Header results read ahead of a chord's join, kept in one object.

When a bucket of a chord's header is complete (chords.MarkerCounter), the
finisher that saw it complete reads the bucket's results and stores them,
as the store gave them, in one snapshot object under the chord's name. The
finisher that fires the chord then reads one snapshot per bucket instead of
every header result, so the join after the last header task reads about
one bucket of results, not N. A snapshot is only a head start: whatever it
lacks (a bucket without one, a result that was not finished, an object that
is not a snapshot) the join reads from the results themselves. On Azure
(chords.AppendCounter) the buckets' append blobs carry the small results
themselves, and a snapshot holds only what they do not carry.

The format: a magic line, a JSON index ``[[name, length], ...]`` on one
line, then the payloads one after another.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

MAGIC = b"celery-storage-results-snapshot-1\n"


def pack(payloads: Mapping[str, bytes]) -> bytes:
    """One object holding each result name's stored bytes."""
    index = json.dumps([[name, len(data)] for name, data in payloads.items()], separators=(",", ":"))
    return b"".join([MAGIC, index.encode("utf-8"), b"\n", *payloads.values()])


def unpack(data: bytes) -> dict[str, bytes]:
    """The result names and bytes that pack() stored; ValueError for anything else."""
    if not data.startswith(MAGIC):
        raise ValueError("it does not start like a snapshot of header results")
    head, newline, body = data[len(MAGIC) :].partition(b"\n")
    if not newline:
        raise ValueError("it has no index line")
    try:
        index = json.loads(head)
    except ValueError:
        raise ValueError("its index is not JSON") from None
    if not isinstance(index, list) or not all(_is_entry(entry) for entry in index):
        raise ValueError("its index is not a list of [name, length] pairs")
    if sum(length for _, length in index) != len(body):
        raise ValueError(f"its index adds up to another size than its {len(body)} bytes of payloads")
    payloads: dict[str, bytes] = {}
    offset = 0
    for name, length in index:
        payloads[name] = body[offset : offset + length]
        offset += length
    return payloads


def _is_entry(entry: object) -> bool:
    return (
        isinstance(entry, list)
        and len(entry) == 2
        and isinstance(entry[0], str)
        and isinstance(entry[1], int)
        and not isinstance(entry[1], bool)
        and entry[1] >= 0
    )
