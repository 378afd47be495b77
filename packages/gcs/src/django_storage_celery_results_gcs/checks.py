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

from django_storage_celery_results.catalogue import OBJECT_STORE_CHECKS, Catalogue, CheckId
from django_storage_celery_results.probe import Probe, PublicAcl, RoundTrip

from .adapter import GCSAdapter
from .lifecycle import current_rule
from .settings_map import GCS_SETTINGS

CHECKS = Catalogue(
    "django_storage_celery_results_gcs",
    *OBJECT_STORE_CHECKS,
    CheckId("I011", "uniform bucket-level access is off, so an object ACL could make a result public"),
)
PUBLIC_MEMBERS = frozenset({"allUsers", "allAuthenticatedUsers"})


#: Findings from the configuration alone (no request).
check_settings = PublicAcl(
    CHECKS, GCS_SETTINGS, "gcs", frozenset({"publicRead", "publicReadWrite", "authenticatedRead"}), "acl"
)


class GCSProbe(Probe):
    adapter: GCSAdapter
    catalogue = CHECKS
    words = RoundTrip(
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
    network_hint = "Check the network (and STORAGE_EMULATOR_HOST when you use an emulator)."
    preflight_hint = "Grant storage.objects.list on the bucket."
    lifecycle_unreadable_hint = "Grant storage.buckets.get to check it, or make sure cleanup() runs."

    def __init__(self, adapter: GCSAdapter) -> None:
        # A check answers at once: no client retries for minutes on an unreachable store.
        adapter = copy.copy(adapter)
        adapter.retry = None
        super().__init__(adapter)

    def first_request(self) -> Any:
        adapter = self.adapter
        return list(
            adapter.client.list_blobs(
                adapter.bucket,
                prefix=adapter.prefix,
                max_results=1,
                retry=None,
                timeout=adapter.request_timeout,
            )
        )

    def without_permission(self) -> None:
        self.add(
            "W010",
            "the credentials lack storage.objects.list, so cleanup() cannot list expired results",
            "Grant roles/storage.objectUser on the bucket, or expire results with a lifecycle rule "
            "(ensure_lifecycle_rule).",
        )

    def inspect(self, name: str) -> None:
        acl = self.adapter.blob(self.adapter.key(name)).acl
        try:
            acl.reload(retry=None, timeout=self.adapter.request_timeout)
        except self.errors:
            return  # uniform bucket-level access (no ACLs), or no permission to read them
        if any(entry.get("entity") in PUBLIC_MEMBERS for entry in acl):
            self.add(
                "E015",
                "new results are publicly readable through their ACL",
                "Remove the public ACL (default_acl / GS_OBJECT_PARAMETERS['acl'], the bucket's default "
                "object ACL) and turn on uniform bucket-level access.",
            )

    def after_round_trip(self, expires_seconds: float | None) -> None:
        adapter = self.adapter
        try:
            bucket = adapter.client.get_bucket(
                adapter.bucket_name, retry=None, timeout=adapter.request_timeout
            )
        except self.errors as exc:
            self.add(
                "I010",
                f"the bucket's settings could not be read ({self.code(exc)}), so its public access and "
                "lifecycle rules were not checked",
                "Grant storage.buckets.get on the bucket to check them, or make sure cleanup() runs.",
            )
            return
        self._check_bucket_access(bucket)
        if expires_seconds:
            self.lifecycle(lambda: current_rule(self.adapter, bucket), expires_seconds)

    def _check_bucket_access(self, bucket: Any) -> None:
        config = bucket.iam_configuration
        if config.public_access_prevention == "enforced":
            return  # nothing in the bucket can be made public
        try:
            bindings = bucket.get_iam_policy(requested_policy_version=3, retry=None).bindings
        except self.errors:
            bindings = []  # no permission to read the policy
        public = sorted({binding["role"] for binding in bindings if PUBLIC_MEMBERS & set(binding["members"])})
        if public:
            self.add(
                "E015",
                f"the bucket's IAM policy grants {', '.join(public)} to allUsers or allAuthenticatedUsers, "
                "results included",
                "Remove allUsers and allAuthenticatedUsers from the bucket's IAM policy, and enforce public "
                "access prevention on the results bucket.",
            )
        if not config.uniform_bucket_level_access_enabled:
            self.add(
                "I011",
                "uniform bucket-level access is off, so an object ACL (a predefined ACL, the bucket's "
                "default object ACL) can make a result public",
                "Turn on uniform bucket-level access (and public access prevention) for the results bucket.",
            )


check_connectivity = GCSProbe.check
