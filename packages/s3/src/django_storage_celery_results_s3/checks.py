"""Checks of an S3 result store: its settings, and a connectivity probe.

``check_settings`` runs with every ``manage.py check`` and makes no request.
``check_connectivity`` talks to S3 (``manage.py check --deploy``, or call it
directly): bucket and credentials, a put/get/delete round trip under the
results prefix, conditional writes, ``s3:ListBucket``, the lifecycle rule and
public access. Messages name the bucket and prefix, never credentials.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, PartialCredentialsError
from django.core import checks

from django_storage_celery_results.adapters import CREATE, StorageAdapter, Update
from django_storage_celery_results.exceptions import VersionMismatch

from .adapter import S3Adapter, error_of
from .lifecycle import expiry_days, find_expiry_rule

PUBLIC_ACLS = frozenset({"public-read", "public-read-write", "authenticated-read"})
PUBLIC_GRANTEES = (
    "http://acs.amazonaws.com/groups/global/AllUsers",
    "http://acs.amazonaws.com/groups/global/AuthenticatedUsers",
)
CREDENTIAL_CODES = frozenset(
    {"InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken", "TokenRefreshRequired"}
)
PROBE_PREFIX = "celery-check-"


def _id(kind: str, number: int) -> str:
    return f"django_storage_celery_results_s3.{kind}{number:03d}"


def check_settings(adapter: StorageAdapter) -> list[checks.CheckMessage]:
    """Findings from the configuration alone (no request)."""
    assert isinstance(adapter, S3Adapter)
    acl = adapter.storage.get_object_parameters("").get("ACL") or adapter.storage.default_acl
    if acl in PUBLIC_ACLS:
        return [
            checks.Error(
                f"Celery results in {adapter.describe()} are written with the canned ACL {acl!r}: "
                "anyone could read task results.",
                hint="Remove ACL from AWS_S3_OBJECT_PARAMETERS / default_acl for results: set "
                "CELERY_RESULT_STORAGE_CONFIG['default_acl'] = None, or use the 's3' preset.",
                id=_id("E", 1),
            )
        ]
    return []


class _Probe:
    """Runs one step of the probe; turns its failure into a check message."""

    def __init__(self, adapter: S3Adapter) -> None:
        self.adapter = adapter
        self.messages: list[checks.CheckMessage] = []

    def step(self, doing: str, call: Callable[[], Any], hint: str) -> tuple[bool, Any]:
        try:
            return True, call()
        except (ClientError, BotoCoreError) as exc:
            self.report(doing, exc, hint)
            return False, None

    def report(self, doing: str, exc: ClientError | BotoCoreError, hint: str) -> None:
        if isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
            self.fail(
                f"no usable credentials while {doing}",
                "Set access_key and secret_key (AWS_S3_ACCESS_KEY_ID / AWS_S3_SECRET_ACCESS_KEY), "
                "a session_profile or an instance role.",
                11,
            )
        elif isinstance(exc, BotoCoreError):
            self.fail(
                f"cannot reach S3 while {doing}: {type(exc).__name__}",
                "Check endpoint_url / region_name (AWS_S3_ENDPOINT_URL, AWS_S3_REGION_NAME) and the network.",
                12,
            )
        elif error_of(exc)[1] in CREDENTIAL_CODES:
            self.fail(
                f"S3 rejected the credentials ({error_of(exc)[1]}) while {doing}",
                "Check access_key / secret_key / security_token (AWS_S3_ACCESS_KEY_ID, "
                "AWS_S3_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN).",
                11,
            )
        elif error_of(exc)[1] == "NoSuchBucket":
            self.fail(
                f"the bucket {self.adapter.bucket_name!r} does not exist",
                "Create it, or fix bucket_name (AWS_STORAGE_BUCKET_NAME) and endpoint_url.",
                10,
            )
        else:
            status, code = error_of(exc)
            self.fail(f"{doing} failed: {code or status}", hint, 13)

    def fail(self, what: str, hint: str, number: int) -> None:
        self.messages.append(
            checks.Error(
                f"Celery results in {self.adapter.describe()}: {what}.", hint=hint, id=_id("E", number)
            )
        )

    def warn(self, what: str, hint: str, number: int) -> None:
        self.messages.append(
            checks.Warning(
                f"Celery results in {self.adapter.describe()}: {what}.", hint=hint, id=_id("W", number)
            )
        )


def check_connectivity(
    adapter: StorageAdapter, expires_seconds: float | None = None
) -> list[checks.CheckMessage]:
    """Talk to S3 and report what would break or leak; [] when all is well."""
    assert isinstance(adapter, S3Adapter)
    probe = _Probe(adapter)
    client, bucket = adapter.client, adapter.bucket_name

    try:
        client.list_objects_v2(Bucket=bucket, Prefix=adapter.prefix, MaxKeys=1)
    except ClientError as exc:
        if error_of(exc)[1] != "AccessDenied":
            probe.report("listing the bucket", exc, "Grant s3:ListBucket on the bucket.")
            return probe.messages
        probe.warn(
            "the credentials lack s3:ListBucket, so S3 answers a missing result with 403 (read as "
            "PENDING, like a 404) and cleanup() cannot list expired results",
            "Grant s3:ListBucket on the bucket for the results prefix, or expire results with a "
            "lifecycle rule (ensure_lifecycle_rule).",
            10,
        )
    except BotoCoreError as exc:
        probe.report("listing the bucket", exc, "")
        return probe.messages

    name = f"{PROBE_PREFIX}{uuid.uuid4().hex}"
    written, _ = probe.step(
        "writing a probe object",
        lambda: adapter.put(name, b"{}", CREATE),
        "Grant s3:PutObject on the results prefix (and kms:GenerateDataKey for SSE-KMS).",
    )
    if not written:
        return probe.messages
    try:
        ok, stored = probe.step(
            "reading the probe object back",
            lambda: adapter.read(name),
            "Grant s3:GetObject on the results prefix (and kms:Decrypt for SSE-KMS).",
        )
        if ok and (stored is None or stored.data != b"{}"):
            probe.fail(
                "a probe object read back different", "Check the endpoint and any proxy in between.", 13
            )
        _check_conditional_writes(probe, name)
        _check_public_access(probe, name)
    finally:
        probe.step(
            "deleting the probe object",
            lambda: adapter.delete(name),
            "Grant s3:DeleteObject on the results prefix: forget() and cleanup() need it.",
        )
    if expires_seconds:
        _check_lifecycle(probe, expires_seconds)
    return probe.messages


def _check_conditional_writes(probe: _Probe, name: str) -> None:
    adapter = probe.adapter
    for mode, header in ((CREATE, "If-None-Match"), (Update('"celery-check-stale"'), "If-Match")):
        try:
            adapter.put(name, b"{}", mode)
        except VersionMismatch:
            continue
        except (ClientError, BotoCoreError):
            pass  # reported as an error below, like an ignored condition
        probe.fail(
            f"the store does not honour {header} on PutObject, so a late duplicate could overwrite "
            "a SUCCESS result",
            "Use a store with S3 conditional writes, or set CELERY_RESULT_STORAGE_ADAPTER = 'generic'.",
            14,
        )
        return


def _check_public_access(probe: _Probe, name: str) -> None:
    adapter = probe.adapter
    client, bucket = adapter.client, adapter.bucket_name
    try:
        grants = client.get_object_acl(Bucket=bucket, Key=adapter.key(name)).get("Grants", ())
    except (ClientError, BotoCoreError):
        grants = ()  # ACLs unreadable: nothing to conclude from them
    if any(grant.get("Grantee", {}).get("URI") in PUBLIC_GRANTEES for grant in grants):
        probe.fail(
            "new results are publicly readable through their ACL",
            "Remove the public ACL (default_acl / AWS_S3_OBJECT_PARAMETERS['ACL']) and block public access.",
            15,
        )
    try:
        status = client.get_bucket_policy_status(Bucket=bucket)["PolicyStatus"]
    except (ClientError, BotoCoreError):
        return  # no policy, or no permission to read it
    if status.get("IsPublic"):
        probe.fail(
            "the bucket policy makes the bucket public, results included",
            "Use a private bucket for results, or turn on S3 Block Public Access.",
            15,
        )


def _check_lifecycle(probe: _Probe, expires_seconds: float) -> None:
    adapter = probe.adapter
    try:
        rule = find_expiry_rule(adapter)
    except (ClientError, BotoCoreError) as exc:
        code = error_of(exc)[1] if isinstance(exc, ClientError) else type(exc).__name__
        probe.messages.append(
            checks.Info(
                f"Celery results in {adapter.describe()}: the lifecycle configuration "
                f"could not be read ({code}).",
                hint="Grant s3:GetLifecycleConfiguration to check it, or make sure cleanup() runs.",
                id=_id("I", 10),
            )
        )
        return
    days = expiry_days(expires_seconds)
    if rule is None:
        probe.warn(
            f"no lifecycle rule expires the results prefix, so expired results stay until cleanup() "
            f"deletes them (result_expires is {expires_seconds:g} s)",
            "Run celery beat (it schedules celery.backend_cleanup daily), or create the rule once "
            "with django_storage_celery_results_s3.ensure_lifecycle_rule.",
            11,
        )
    elif rule["Expiration"]["Days"] != days:
        probe.warn(
            f"the lifecycle rule {rule.get('ID')!r} expires results after {rule['Expiration']['Days']} days, "
            f"result_expires asks for {days}",
            "Update it with django_storage_celery_results_s3.ensure_lifecycle_rule.",
            12,
        )
