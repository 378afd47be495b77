"""Checks of an S3 result store: its settings, and a connectivity probe.

``check_settings`` runs with every ``manage.py check`` and makes no request.
``check_connectivity`` talks to S3 (``manage.py check --deploy``, or call it
directly): bucket and credentials, a put/get/delete round trip under the
results prefix, conditional writes, ``s3:ListBucket``, the lifecycle rule and
public access. Messages name the bucket and prefix, never credentials.
"""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, PartialCredentialsError
from django.core import checks

from django_storage_celery_results.adapters import StorageAdapter
from django_storage_celery_results.probe import (
    BAD_CREDENTIALS,
    NO_BUCKET,
    NO_LIST_PERMISSION,
    PUBLIC,
    UNREACHABLE,
    Finding,
    Probe,
    RoundTrip,
    public_acl_errors,
)

from .adapter import S3Adapter, error_of
from .lifecycle import find_expiry_rule

PUBLIC_ACLS = frozenset({"public-read", "public-read-write", "authenticated-read"})
PUBLIC_GRANTEES = (
    "http://acs.amazonaws.com/groups/global/AllUsers",
    "http://acs.amazonaws.com/groups/global/AuthenticatedUsers",
)
CREDENTIAL_CODES = frozenset(
    {"InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken", "TokenRefreshRequired"}
)


def check_settings(adapter: StorageAdapter) -> list[checks.CheckMessage]:
    """Findings from the configuration alone (no request)."""
    assert isinstance(adapter, S3Adapter)
    return public_acl_errors(adapter, S3Probe.package, "s3", PUBLIC_ACLS, "ACL", "AWS_S3_OBJECT_PARAMETERS")


class S3Probe(Probe):
    package = "django_storage_celery_results_s3"
    errors = (ClientError, BotoCoreError)

    def code(self, exc: BaseException) -> str:
        if isinstance(exc, ClientError):
            status, code = error_of(exc)
            return code or str(status)
        return type(exc).__name__

    def diagnose(self, doing: str, exc: BaseException) -> Finding | None:
        if isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
            return Finding(
                f"no usable credentials while {doing}",
                "Set access_key and secret_key (AWS_S3_ACCESS_KEY_ID / AWS_S3_SECRET_ACCESS_KEY), "
                "a session_profile or an instance role.",
                BAD_CREDENTIALS,
            )
        if isinstance(exc, BotoCoreError):
            return Finding(
                f"cannot reach S3 while {doing}: {type(exc).__name__}",
                "Check endpoint_url / region_name (AWS_S3_ENDPOINT_URL, AWS_S3_REGION_NAME) and the network.",
                UNREACHABLE,
            )
        code = self.code(exc)
        if code in CREDENTIAL_CODES:
            return Finding(
                f"S3 rejected the credentials ({code}) while {doing}",
                "Check access_key / secret_key / security_token (AWS_S3_ACCESS_KEY_ID, "
                "AWS_S3_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN).",
                BAD_CREDENTIALS,
            )
        if code == "NoSuchBucket":
            assert isinstance(self.adapter, S3Adapter)
            return Finding(
                f"the bucket {self.adapter.bucket_name!r} does not exist",
                "Create it, or fix bucket_name (AWS_STORAGE_BUCKET_NAME) and endpoint_url.",
                NO_BUCKET,
            )
        return None


ROUND_TRIP = RoundTrip(
    write_hint="Grant s3:PutObject on the results prefix (and kms:GenerateDataKey for SSE-KMS).",
    read_hint="Grant s3:GetObject on the results prefix (and kms:Decrypt for SSE-KMS).",
    delete_hint="Grant s3:DeleteObject on the results prefix: forget() and cleanup() need it.",
    create_condition="If-None-Match on PutObject",
    update_condition="If-Match on PutObject",
    stale_version='"celery-check-stale"',
    conditions_hint="Use a store with S3 conditional writes, or set "
    "CELERY_RESULT_STORAGE_ADAPTER = 'generic'.",
)


def check_connectivity(
    adapter: StorageAdapter, expires_seconds: float | None = None
) -> list[checks.CheckMessage]:
    """Talk to S3 and report what would break or leak; [] when all is well."""
    assert isinstance(adapter, S3Adapter)
    probe = S3Probe(adapter)
    try:
        adapter.client.list_objects_v2(Bucket=adapter.bucket_name, Prefix=adapter.prefix, MaxKeys=1)
    except ClientError as exc:
        if error_of(exc)[1] != "AccessDenied":
            probe.report("listing the bucket", exc, "Grant s3:ListBucket on the bucket.")
            return probe.messages
        probe.warn(
            "the credentials lack s3:ListBucket, so S3 answers a missing result with 403 (read as "
            "PENDING, like a 404) and cleanup() cannot list expired results",
            "Grant s3:ListBucket on the bucket for the results prefix, or expire results with a "
            "lifecycle rule (ensure_lifecycle_rule).",
            NO_LIST_PERMISSION,
        )
    except BotoCoreError as exc:
        probe.report("listing the bucket", exc, "")
        return probe.messages

    if (
        probe.round_trip(ROUND_TRIP, lambda name: _check_public_access(probe, adapter, name))
        and expires_seconds
    ):
        probe.lifecycle(
            lambda: _expiry_rule(adapter),
            expires_seconds,
            "Grant s3:GetLifecycleConfiguration to check it, or make sure cleanup() runs.",
        )
    return probe.messages


def _expiry_rule(adapter: S3Adapter) -> tuple[str, int] | None:
    rule = find_expiry_rule(adapter)
    return None if rule is None else (repr(rule.get("ID")), rule["Expiration"]["Days"])


def _check_public_access(probe: S3Probe, adapter: S3Adapter, name: str) -> None:
    client, bucket = adapter.client, adapter.bucket_name
    try:
        grants = client.get_object_acl(Bucket=bucket, Key=adapter.key(name)).get("Grants", ())
    except (ClientError, BotoCoreError):
        grants = ()  # ACLs unreadable: nothing to conclude from them
    if any(grant.get("Grantee", {}).get("URI") in PUBLIC_GRANTEES for grant in grants):
        probe.fail(
            "new results are publicly readable through their ACL",
            "Remove the public ACL (default_acl / AWS_S3_OBJECT_PARAMETERS['ACL']) and block public access.",
            PUBLIC,
        )
    try:
        status = client.get_bucket_policy_status(Bucket=bucket)["PolicyStatus"]
    except (ClientError, BotoCoreError):
        return  # no policy, or no permission to read it
    if status.get("IsPublic"):
        probe.fail(
            "the bucket policy makes the bucket public, results included",
            "Use a private bucket for results, or turn on S3 Block Public Access.",
            PUBLIC,
        )
