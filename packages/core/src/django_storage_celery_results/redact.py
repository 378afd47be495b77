"""The one rule that keeps credentials out of every text the backend produces.

Text leaves the backend in log lines, check findings, command output,
``describe()`` and the messages of errors raised by a storage. Before it does,
two things are hidden:

* every secret value the storage was configured with (found in its options and
  its attributes: values under secret-looking keys such as ``password`` or
  ``account_key``, and the password of any URL among them), wherever it appears;
* credentials by their shape, known or not: the password of
  ``scheme://user:password@host``, a key in a connection string
  (``AccountKey=...;``), a signature or token in a URL query (``?sig=...``,
  ``X-Amz-Signature=...``) and ``'password': '...'`` in a printed dict.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any
from urllib.parse import unquote, urlsplit

MASK = "***"

#: Option and attribute names whose values are credentials.
SECRET_NAME = re.compile(
    r"pass|pwd|secret|token|key|credential|signature|sas|auth|connection_?str|conn_str|private",
    re.IGNORECASE,
)
#: Known values shorter than this are hidden only where their shape shows them
#: (a URL, a connection string, a dict), not everywhere they occur.
MIN_LENGTH = 4

# Names of query parameters and connection-string keys that carry credentials.
_CREDENTIAL_NAMES = (
    r"password|passwd|pwd|secret|[a-z_-]*token|sig|signature|"
    r"accountkey|sharedaccesskey|sharedaccesssignature|api_?key|access_?key|"
    r"x-amz-signature|x-amz-credential|x-amz-security-token|"
    r"x-goog-signature|x-goog-credential"
)
_SHAPES = [
    # scheme://user:password@host: the password up to the last "@" before the
    # host (passwords may hold "@" and ":"; whitespace ends a URL).
    (re.compile(r"([a-z][a-z0-9+.-]*://[^\s/@:]*:)[^\s/]*(?=@[^\s@/]+)", re.IGNORECASE), rf"\g<1>{MASK}"),
    # ?sig=...&token=... in a URL query, KEY=value; in a connection string
    (re.compile(rf"(?<![a-z0-9])((?:{_CREDENTIAL_NAMES})=)[^&;\s'\"]*", re.IGNORECASE), rf"\g<1>{MASK}"),
    # 'passwd': 'value' and "password": "value" in a printed dict or JSON
    (
        re.compile(
            r"""(['"][a-z_-]*(?:pass|pwd|secret|token|credential|[a-z]_?key)[a-z_-]*['"]\s*:\s*)"""
            r"""(?:'[^']*'|"[^"]*")""",
            re.IGNORECASE,
        ),
        rf"\g<1>'{MASK}'",
    ),
]


class Redactor:
    """Hides the secrets of one configured storage, and credentials by shape."""

    def __init__(self, *sources: Any) -> None:
        self._secrets: set[str] = set()
        for source in sources:
            self.learn(source)

    def learn(self, source: Any) -> None:
        """Remember the secret values in options (a mapping) or a storage's attributes."""
        values = source if isinstance(source, Mapping) else _attributes(source)
        self._secrets.update(value for value in secret_values(values) if len(value) >= MIN_LENGTH)

    def __call__(self, text: str) -> str:
        for secret in sorted(self._secrets, key=len, reverse=True):
            text = text.replace(secret, MASK)
        for pattern, replacement in _SHAPES:
            text = pattern.sub(replacement, text)
        return text

    def leaks(self, exc: BaseException) -> bool:
        """True when the error or one it was raised from shows a credential."""
        return any(self(text) != text for text in _texts(exc))

    def error(self, exc: Exception, doing: str) -> Exception:
        """The error itself when it shows nothing secret, else a StorageError
        that keeps its class name and its redacted message, and none of its chain."""
        if not self.leaks(exc):
            return exc
        return StorageError(f"{self(doing)}: {type(exc).__name__}: {self(str(exc))}", type(exc))


class StorageError(OSError):
    """A storage's error whose message showed a credential, with the credential hidden.

    ``cause_type`` is the class of the storage's own error, for retry rules
    (``result_safe_to_retry``) that name it; the error itself is not kept,
    since its text and traceback would show the credential again.
    """

    def __init__(self, message: str, cause_type: type[BaseException]) -> None:
        super().__init__(message)
        self.cause_type = cause_type

    def __str__(self) -> str:
        return str(self.args[0])


def redact(text: str, *sources: Any) -> str:
    """text with the secrets of the given options or storages, and credentials by shape, hidden."""
    return Redactor(*sources)(text)


def secret_values(values: Mapping[Any, Any], name: str = "") -> Iterator[str]:
    """The credentials among configured values: those under secret-looking
    names (at any depth) and the passwords of URLs."""
    for key, value in values.items():
        path = f"{name}.{key}"
        if isinstance(value, Mapping):
            yield from secret_values(value, path)
        elif isinstance(value, (list, tuple)):
            yield from secret_values(dict(enumerate(value)), path)
        elif isinstance(value, str):
            if SECRET_NAME.search(str(key)):
                yield value
            yield from _url_passwords(value)


def _url_passwords(value: str) -> Iterator[str]:
    if "://" not in value or "@" not in value:
        return
    try:
        userinfo = urlsplit(value).netloc.rpartition("@")[0]
    except ValueError:
        return
    # "user:pass:word": some parsers split at the first ":", others at the last
    for password in (userinfo.partition(":")[2], userinfo.rpartition(":")[2]):
        if password:
            yield password
            yield unquote(password)


def _attributes(storage: Any) -> Mapping[str, Any]:
    try:
        return dict(vars(storage))
    except TypeError:  # no __dict__
        return {}


def _texts(exc: BaseException) -> Iterable[str]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield str(current)
        yield repr(current.args)
        current = current.__cause__ or current.__context__
