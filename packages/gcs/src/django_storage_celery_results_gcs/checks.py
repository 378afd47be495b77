"""Checks of a Google Cloud Storage result store: its settings, and a connectivity probe.

``check_settings`` runs with every ``manage.py check`` and makes no request.
``check_connectivity`` talks to GCS (``manage.py check --deploy``, or call it
directly): bucket and credentials, a put/get/delete round trip under the
results prefix, generation preconditions, ``storage.objects.list``, public
access (object ACLs, the bucket's IAM policy, uniform bucket-level access)
and the lifecycle rule. Messages name the bucket and prefix, never
credentials.
"""

from __future__ import annotations

import copy
from typing import Any

import requests
from django.core import checks
from google.api_core import exceptions
from google.auth.exceptions import GoogleAuthError, InvalidOperation, RefreshError, TransportError
from google.cloud.storage.exceptions import DataCorruption

from django_storage_celery_results.adapters import StorageAdapter
from django_storage_celery_results.probe import (
    BAD_CREDENTIALS,
    LIFECYCLE_UNREADABLE,
    NO_BUCKET,
    NO_LIST_PERMISSION,
    PUBLIC,
    UNREACHABLE,
    Finding,
    Probe,
    RoundTrip,
    public_acl_errors,
)

from .adapter import GCSAdapter
from .lifecycle import find_expiry_rule

#: Predefined ACLs that let people outside the project read an object.
PUBLIC_ACLS = frozenset({"publicRead", "publicReadWrite", "authenticatedRead"})
PUBLIC_MEMBERS = frozenset({"allUsers", "allAuthenticatedUsers"})
#: Info: object ACLs are in force (uniform bucket-level access is off).
OBJECT_ACLS = 11


def check_settings(adapter: StorageAdapter) -> list[checks.CheckMessage]:
    """Findings from the configuration alone (no request)."""
    assert isinstance(adapter, GCSAdapter)
    return public_acl_errors(adapter, GCSProbe.package, "gcs", PUBLIC_ACLS, "acl", "GS_OBJECT_PARAMETERS")


class GCSProbe(Probe):
    package = "django_storage_celery_results_gcs"
    errors = (exceptions.GoogleAPICallError, GoogleAuthError, requests.RequestException, DataCorruption)

    def code(self, exc: BaseException) -> str:
        if isinstance(exc, exceptions.GoogleAPICallError):
            return f"HTTP {exc.code} {type(exc).__name__}"
        return type(exc).__name__

    def diagnose(self, doing: str, exc: BaseException) -> Finding | None:
        # A 401 makes google-auth refresh the credentials: RefreshError when that
        # fails, InvalidOperation for credentials that cannot refresh (anonymous).
        if isinstance(exc, (RefreshError, InvalidOperation, exceptions.Unauthorized)):
            return Finding(
                f"Google rejected the credentials ({type(exc).__name__}) while {doing}",
                "Check credentials (GS_CREDENTIALS) or the application default credentials "
                "(GOOGLE_APPLICATION_CREDENTIALS, the workload identity of the service account).",
                BAD_CREDENTIALS,
            )
        if isinstance(exc, (requests.ConnectionError, requests.Timeout, TransportError)):
            return Finding(
                f"cannot reach Google Cloud Storage while {doing}: {type(exc).__name__}",
                "Check the network (and STORAGE_EMULATOR_HOST when you use an emulator).",
                UNREACHABLE,
            )
        return None


ROUND_TRIP = RoundTrip(
    write_hint="Grant storage.objects.create on the bucket (roles/storage.objectUser); with a KMS key, "
    "let the Cloud Storage service agent use it (roles/cloudkms.cryptoKeyEncrypterDecrypter).",
    read_hint="Grant storage.objects.get on the bucket (roles/storage.objectUser).",
    delete_hint="Grant storage.objects.delete on the bucket (roles/storage.objectUser): a result's "
    "next state replaces the object, and forget() and cleanup() delete.",
    create_condition="ifGenerationMatch=0 on uploads",
    update_condition="ifGenerationMatch=<generation> on uploads",
    stale_version="1",
    conditions_hint="Use Google Cloud Storage or an emulator that honours preconditions, or set "
    "CELERY_RESULT_STORAGE_ADAPTER = 'generic'.",
)


def check_connectivity(
    adapter: StorageAdapter, expires_seconds: float | None = None
) -> list[checks.CheckMessage]:
    """Talk to GCS and report what would break or leak; [] when all is well."""
    assert isinstance(adapter, GCSAdapter)
    # A check answers at once: no client retries for minutes on an unreachable store.
    adapter = copy.copy(adapter)
    adapter.retry = None
    probe = GCSProbe(adapter)
    try:
        list(adapter.client.list_blobs(adapter.bucket, prefix=adapter.prefix, max_results=1, retry=None))
    except exceptions.NotFound:
        probe.fail(
            f"the bucket {adapter.bucket_name!r} does not exist",
            "Create it, or fix bucket_name (GS_BUCKET_NAME).",
            NO_BUCKET,
        )
        return probe.messages
    except exceptions.Forbidden:
        probe.warn(
            "the credentials lack storage.objects.list, so cleanup() cannot list expired results",
            "Grant roles/storage.objectUser on the bucket, or expire results with a lifecycle rule "
            "(ensure_lifecycle_rule).",
            NO_LIST_PERMISSION,
        )
    except probe.errors as exc:
        probe.report("listing the bucket", exc, "Grant storage.objects.list on the bucket.")
        return probe.messages

    if not probe.round_trip(ROUND_TRIP, lambda name: _check_object_acl(probe, adapter, name)):
        return probe.messages
    try:
        bucket = adapter.client.get_bucket(adapter.bucket_name, retry=None)
    except probe.errors as exc:
        probe.info(
            f"the bucket's settings could not be read ({probe.code(exc)}), so its public access and "
            "lifecycle rules were not checked",
            "Grant storage.buckets.get on the bucket to check them, or make sure cleanup() runs.",
            LIFECYCLE_UNREADABLE,
        )
        return probe.messages
    _check_bucket_access(probe, bucket)
    if expires_seconds:
        probe.lifecycle(
            lambda: _expiry_rule(adapter, bucket),
            expires_seconds,
            "Grant storage.buckets.get to check it, or make sure cleanup() runs.",
        )
    return probe.messages


def _expiry_rule(adapter: GCSAdapter, bucket: Any) -> tuple[str, int] | None:
    rule = find_expiry_rule(adapter, bucket)
    if rule is None:
        return None
    prefixes = rule["condition"].get("matchesPrefix")
    return f"for {prefixes!r}" if prefixes else "for the whole bucket", rule["condition"]["age"]


def _check_object_acl(probe: GCSProbe, adapter: GCSAdapter, name: str) -> None:
    acl = adapter.blob(name).acl
    try:
        acl.reload(retry=None)
    except probe.errors:
        return  # uniform bucket-level access (no ACLs), or no permission to read them
    if any(entry.get("entity") in PUBLIC_MEMBERS for entry in acl):
        probe.fail(
            "new results are publicly readable through their ACL",
            "Remove the public ACL (default_acl / GS_OBJECT_PARAMETERS['acl'], the bucket's default "
            "object ACL) and turn on uniform bucket-level access.",
            PUBLIC,
        )


def _check_bucket_access(probe: GCSProbe, bucket: Any) -> None:
    config = bucket.iam_configuration
    if config.public_access_prevention == "enforced":
        return  # nothing in the bucket can be made public
    try:
        bindings = bucket.get_iam_policy(requested_policy_version=3, retry=None).bindings
    except probe.errors:
        bindings = []  # no permission to read the policy
    public = sorted({binding["role"] for binding in bindings if PUBLIC_MEMBERS & set(binding["members"])})
    if public:
        probe.fail(
            f"the bucket's IAM policy grants {', '.join(public)} to allUsers or allAuthenticatedUsers, "
            "results included",
            "Remove allUsers and allAuthenticatedUsers from the bucket's IAM policy, and enforce public "
            "access prevention on the results bucket.",
            PUBLIC,
        )
    if not config.uniform_bucket_level_access_enabled:
        probe.info(
            "uniform bucket-level access is off, so an object ACL (a predefined ACL, the bucket's default "
            "object ACL) can make a result public",
            "Turn on uniform bucket-level access (and public access prevention) for the results bucket.",
            OBJECT_ACLS,
        )
