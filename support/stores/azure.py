"""Azure Blob Storage as the tests see it: Azurite, a container client straight to it,
Azure's wire and error answers."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from support.faults import Fault, xml_error
from support.processes import REPO, EmulatorProcess
from support.proxy import CountingProxy, Request, condition
from support.stores.base import PLAIN_HTTP, Emulator, StoreUnderTest, keys_under

AZURITE_DIR = REPO / "tests" / "azurite"
#: Azurite's documented development account (public, the same for everyone).
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def azurite_connection_string(endpoint: str, key: str = AZURITE_KEY) -> str:
    """The development account's connection string, its blob endpoint at `endpoint`."""
    return (
        f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={key};"
        f"BlobEndpoint={endpoint}/{AZURITE_ACCOUNT};"
    )


def install_azurite() -> Path:
    """The pinned Azurite (tests/azurite/package-lock.json), installed by npm ci when missing."""
    binary = AZURITE_DIR / "node_modules" / ".bin" / "azurite-blob"
    if not binary.exists():
        subprocess.run(
            ["npm", "ci", "--prefix", str(AZURITE_DIR), "--no-audit", "--no-fund", "--loglevel=error"],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    return binary


def start_azurite() -> EmulatorProcess:
    binary = install_azurite()
    return EmulatorProcess(
        "azurite",
        lambda port: [
            str(binary),
            *("--blobHost", "127.0.0.1", "--blobPort", str(port)),
            *("--inMemoryPersistence", "--skipApiVersionCheck", "--loose", "--disableTelemetry", "--silent"),
        ],
    )


def azure_error(status: int, code: str, method: str | None = None) -> Fault:
    """An Azure error answer: XML, and the code in a header too."""
    return xml_error(status, code, method, ("x-ms-error-code", code))


def calls(requests: list[Request]) -> list[str]:
    """Requests as 'METHOD?comp=... condition' (path-independent) for exact budgets."""
    return [f"{request.method}{_operation(request)}{condition(request)}" for request in requests]


def _operation(request: Request) -> str:
    comp = parse_qs(request.query).get("comp")
    return f"?comp={comp[0]}" if comp else ""


def no_sdk_retries(config: dict) -> dict:
    return {**config, "client_options": {"retry_total": 0}}


class AzureStore(StoreUnderTest):
    preset = "azure"
    bucket_key = "azure_container"
    storage_class = "storages.backends.azure_storage.AzureStorage"
    public_acl = None
    vocabulary = {**PLAIN_HTTP, "GET?comp=list": "list", "POST?comp=batch": "bulk-delete"}
    pool_size = 10  # the requests session's connection pool
    delete_batch = 256
    requirement = ("azure.storage.blob", "'django-storages[azure]'")

    @classmethod
    def start(cls) -> Emulator:
        server = start_azurite()
        return Emulator(server, CountingProxy(server.url))

    @classmethod
    def missing(cls) -> str | None:
        if shutil.which("npm") is None:
            return "npm is not installed (apt-get install npm): it installs Azurite, the Azure Blob emulator"
        return super().missing()

    def create_bucket(self) -> None:
        from azure.storage.blob import BlobServiceClient, ContainerClient

        connection_string = azurite_connection_string(self.emulator.server.url)
        BlobServiceClient.from_connection_string(connection_string).create_container(self.bucket)
        self.raw = ContainerClient.from_connection_string(connection_string, self.bucket)

    def make_config(self) -> dict:
        connection_string = azurite_connection_string(self.proxy.url)
        return {"connection_string": connection_string, "azure_container": self.bucket}

    def wire(self, requests: list[Request]) -> list[str]:
        return calls(requests)

    def keys(self, request: Request) -> list[str]:
        return keys_under(f"/{AZURITE_ACCOUNT}/{self.bucket}/")(request)

    def plant(self, key: str, data: bytes) -> None:
        self.raw.upload_blob(key, data)

    def fetch(self, key: str) -> bytes:
        return self.raw.download_blob(key, decompress=False).readall()

    def names(self) -> set[str]:
        return set(self.raw.list_blob_names())

    def labels(self, key: str) -> tuple[str | None, str | None]:
        settings = self.raw.get_blob_client(key).get_blob_properties().content_settings
        return settings.content_type, settings.content_encoding

    @property
    def faults(self) -> dict[str, Fault]:
        # Azure throttles with 503 ServerBusy; a 500 is InternalError or OperationTimedOut.
        return {
            "unavailable": azure_error(503, "ServerBusy", method="GET"),
            "throttled": azure_error(503, "ServerBusy", method="GET"),
            "internal-error": azure_error(500, "OperationTimedOut", method="GET"),
            "forbidden": azure_error(403, "AuthorizationPermissionMismatch", method="PUT"),
        }

    def without_client_retries(self) -> dict:
        return no_sdk_retries(self.config)

    def timing_out(self, seconds: float) -> dict | None:
        return {**self.config, "client_options": {"retry_total": 0, "read_timeout": seconds}}

    def lifecycle(self, adapter: Any, expires: float) -> object:
        from django_storage_celery_results_azure import lifecycle_policy

        return lifecycle_policy(adapter, expires)
