"""The storages a module of end-to-end tests runs on, by name: each one's
setting and config, for a worker and its client (tests/test_behaviour.py,
tests/test_failing_canvases.py)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from support.proxy import CountingProxy
from support.stores import STORES

#: The folder storages, the generic adapter on third-party storages, then
#: every object store of support.stores.
GENERIC = ["generic-adapter", "generic-ftp", "generic-sftp", "generic-minimal"]
STORAGES = ["filesystem-provider", *GENERIC, *(f"{preset}-provider" for preset in STORES)]


@dataclass
class Setup:
    name: str
    storage: str
    config: dict
    #: The counting proxy in front of an object store's emulator.
    proxy: CountingProxy | None = None

    @property
    def generic(self) -> bool:
        """Served by the generic adapter (chords by chord_unlock polling)."""
        return self.name in GENERIC


def storage_setup(request, name: str, folder: Path, monkeypatch: pytest.MonkeyPatch) -> Setup:
    """A fresh store for one module run: its setting and its config (the
    environment its client needs is set here, and the worker inherits it)."""
    if name == "filesystem-provider":
        return Setup(name, "filesystem", {"location": str(folder)})
    if name == "generic-adapter":
        return Setup(name, "support.storages.ThirdPartyFolderStorage", {"location": str(folder)})
    # the third-party storages' folders do not exist yet: the first write creates them
    unique = f"results-{uuid.uuid4().hex[:16]}"
    if name == "generic-ftp":
        location = request.getfixturevalue("ftp_server").location(unique)
        return Setup(name, "storages.backends.ftp.FTPStorage", {"location": location})
    if name == "generic-sftp":
        config = request.getfixturevalue("sftp_server").options(unique, folder / "known_hosts")
        return Setup(name, "storages.backends.sftpstorage.SFTPStorage", config)
    if name == "generic-minimal":
        return Setup(name, "support.storages.MinimalStorage", {"location": str(folder / unique)})
    preset = name.removesuffix("-provider")
    store = STORES[preset](request.getfixturevalue("emulators")[preset], monkeypatch)
    return Setup(name, store.preset, store.worker_config(), store.proxy)
