"""S3 as the tests see it: moto's server, boto3 straight to it, S3's wire and error answers."""

from __future__ import annotations

import sys
from typing import Any

from support.faults import Fault, xml_error
from support.processes import EmulatorProcess
from support.proxy import CountingProxy, Request, condition
from support.stores.base import PLAIN_HTTP, Emulator, StoreUnderTest, keys_under

S3_CREDENTIALS = {"access_key": "testing", "secret_key": "testing", "region_name": "us-east-1"}


def start_moto(**env: str) -> EmulatorProcess:
    return EmulatorProcess(
        "moto server",
        lambda port: [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        ready_path="/moto-api/",
        env=env,
    )


def s3_client(endpoint: str, config: Any = None):
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=S3_CREDENTIALS["access_key"],
        aws_secret_access_key=S3_CREDENTIALS["secret_key"],
        region_name=S3_CREDENTIALS["region_name"],
        config=config,
    )


def calls(requests: list[Request]) -> list[str]:
    """Requests as 'METHOD condition' (path-independent) for exact budgets."""
    described = []
    for request in requests:
        query = request.query.split("=", 1)[0]
        described.append(f"{request.method}{'?' + query if query else ''}{condition(request)}")
    return described


def no_sdk_retries(config: dict) -> dict:
    from botocore.config import Config

    # total_max_attempts counts the first attempt; max_attempts=1 would still allow one retry
    return {**config, "client_config": Config(retries={"total_max_attempts": 1, "mode": "standard"})}


class S3Store(StoreUnderTest):
    preset = "s3"
    bucket_key = "bucket_name"
    storage_class = "storages.backends.s3boto3.S3Boto3Storage"
    public_acl = "public-read"
    vocabulary = {**PLAIN_HTTP, "GET?list-type": "list", "POST?delete": "bulk-delete"}
    pool_size = 10  # botocore's default connection pool
    delete_batch = 1000
    requirement = ("moto.server", "'moto[server]'")

    @classmethod
    def start(cls) -> Emulator:
        server = start_moto()
        return Emulator(server, CountingProxy(server.url))

    def create_bucket(self) -> None:
        self.raw = s3_client(self.emulator.server.url)
        self.raw.create_bucket(Bucket=self.bucket)

    def make_config(self) -> dict:
        return {"bucket_name": self.bucket, "endpoint_url": self.proxy.url, **S3_CREDENTIALS}

    def wire(self, requests: list[Request]) -> list[str]:
        return calls(requests)

    def keys(self, request: Request) -> list[str]:
        return keys_under(f"/{self.bucket}/")(request)

    def plant(self, key: str, data: bytes) -> None:
        self.raw.put_object(Bucket=self.bucket, Key=key, Body=data)

    def fetch(self, key: str) -> bytes:
        return self.raw.get_object(Bucket=self.bucket, Key=key)["Body"].read()

    def names(self) -> set[str]:
        return {item["Key"] for item in self.raw.list_objects_v2(Bucket=self.bucket).get("Contents", ())}

    def labels(self, key: str) -> tuple[str | None, str | None]:
        head = self.raw.head_object(Bucket=self.bucket, Key=key)
        return head["ContentType"], head.get("ContentEncoding")

    @property
    def faults(self) -> dict[str, Fault]:
        return {
            "unavailable": xml_error(503, "ServiceUnavailable", method="GET"),
            "throttled": xml_error(503, "SlowDown", method="GET"),
            "internal-error": xml_error(500, "InternalError", method="GET"),
            "forbidden": xml_error(403, "AccessDenied", method="PUT"),
        }

    def without_client_retries(self) -> dict:
        return no_sdk_retries(self.config)

    def timing_out(self, seconds: float) -> dict | None:
        from botocore.config import Config

        retries = {"total_max_attempts": 1, "mode": "standard"}
        return {**self.config, "client_config": Config(retries=retries, read_timeout=seconds)}

    def lifecycle(self, adapter: Any, expires: float) -> object:
        from django_storage_celery_results_s3 import ensure_lifecycle_rule

        return ensure_lifecycle_rule(adapter, expires)
