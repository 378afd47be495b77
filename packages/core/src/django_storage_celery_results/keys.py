"""How task, group and chord ids become storage names.

Every name is a single path component directly under the storage root, so no
id can reach outside the configured location. Ids made only of lowercase
letters, digits, ``-``, ``_`` and ``.`` (every Celery UUID) keep the earlier
package's names, ``<prefix><id>``. Any other id is stored as ``<prefix>_``
followed by the lowercase base32 of its UTF-8 bytes: plain ids never start with
``_``, base32 is injective and lowercase-only names cannot collide on a
case-insensitive file system, so distinct ids never share a name.
"""

from __future__ import annotations

import base64
import re
from uuid import UUID

from .exceptions import ImproperlyConfigured, InvalidResultId

#: Longest name a common file system accepts for one path component.
MAX_NAME_BYTES = 255

_PLAIN_ID = re.compile(r"[a-z0-9][a-z0-9._-]*")
_ENCODED_MARK = "_"
MEMBER_MARK = "~"
_SAFE_PREFIX = re.compile(r"[A-Za-z0-9._:-]*")


def _short(ident: object) -> str:
    text = repr(ident)
    return text if len(text) <= 80 else f"{text[:60]}...({len(text)} chars)"


class KeyLayout:
    """Maps (kind prefix, id) to a confined, injective storage name."""

    def __init__(self, prefixes: tuple[str, ...], setting: str) -> None:
        for prefix in prefixes:
            if not _SAFE_PREFIX.fullmatch(prefix) or prefix.startswith("."):
                raise ImproperlyConfigured(
                    f"{setting} gives the key prefix {_short(prefix)}: use only "
                    "letters, digits and '._:-', not starting with '.'; put "
                    "folders in the storage location instead."
                )
        self.prefixes = prefixes

    def name(self, prefix: str, ident: object) -> str:
        if prefix not in self.prefixes:
            raise ValueError(f"unknown key prefix {prefix!r}")
        return self._checked(f"{prefix}{self.encode(ident)}", ident)

    def members(self, prefix: str, owner: object) -> str:
        """The prefix of names grouped under an owner (a chord's finished
        header tasks): ``~`` never occurs in a name made by name(), so no
        other name starts with it."""
        return self.name(prefix, owner) + MEMBER_MARK

    def member(self, prefix: str, owner: object, member: str) -> str:
        return self._checked(self.members(prefix, owner) + member, owner)

    def encode(self, ident: object) -> str:
        """The id as it appears in names: itself if plain, else ``_`` + base32."""
        text = self._id_text(ident)
        if not text:
            raise InvalidResultId("empty result id cannot be stored")
        if _PLAIN_ID.fullmatch(text):
            return text
        return _ENCODED_MARK + base64.b32encode(text.encode("utf-8")).decode("ascii").rstrip("=").lower()

    @staticmethod
    def _checked(name: str, ident: object) -> str:
        if len(name.encode("ascii")) > MAX_NAME_BYTES:
            raise InvalidResultId(
                f"result id {_short(ident)} cannot be stored: its storage name "
                f"would be {len(name)} characters, more than {MAX_NAME_BYTES}"
            )
        return name

    def parse(self, name: str) -> tuple[str, str] | None:
        """(prefix, id) of a name made by name(); None for any other name
        (a chord's member markers, another program's objects)."""
        for prefix in sorted(self.prefixes, key=len, reverse=True):
            if name.startswith(prefix) and len(name) > len(prefix):
                encoded = name[len(prefix) :]
                if MEMBER_MARK in encoded:
                    return None
                ident = self.decode(encoded)
                return None if ident is None else (prefix, ident)
        return None

    @staticmethod
    def decode(encoded: str) -> str | None:
        """The id that encode() turned into this text, or None when it cannot be one."""
        if _PLAIN_ID.fullmatch(encoded):
            return encoded
        if not encoded.startswith(_ENCODED_MARK):
            return None
        body = encoded[len(_ENCODED_MARK) :].upper()
        try:
            return base64.b32decode(body + "=" * (-len(body) % 8)).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            return None

    def owns(self, name: str) -> bool:
        """True for names this layout could have produced (used by cleanup)."""
        return any(name.startswith(prefix) and len(name) > len(prefix) for prefix in self.prefixes)

    @staticmethod
    def _id_text(ident: object) -> str:
        if isinstance(ident, UUID):
            return str(ident)
        if isinstance(ident, (bytes, bytearray)):
            try:
                return bytes(ident).decode("utf-8")
            except UnicodeDecodeError:
                raise InvalidResultId(f"result id {_short(ident)} cannot be stored: not UTF-8") from None
        if isinstance(ident, str):
            try:
                ident.encode("utf-8")
            except UnicodeEncodeError:
                raise InvalidResultId(
                    f"result id {_short(ident)} cannot be stored: it holds lone surrogates"
                ) from None
            return ident
        raise InvalidResultId(f"result id {_short(ident)} is not a string")
