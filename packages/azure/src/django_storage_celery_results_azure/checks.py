"""Checks of an Azure result store: its settings, and a connectivity probe.

``check_settings`` runs with every ``manage.py check`` and makes no request.
``check_connectivity`` talks to Azure (``manage.py check --deploy``, or call
it directly): container and credentials, the container's public access level,
a put/get/delete round trip under the results prefix, ETag conditions, and
how to expire results. Messages name the account, container and prefix, never
credentials (a SAS token rides in the client's URL: it is never shown).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.core import checks

from django_storage_celery_results.catalogue import OBJECT_STORE_CHECKS, Catalogue, CheckId
from django_storage_celery_results.probe import Probe, RoundTrip, days, expiry_days

from .adapter import AzureAdapter
from .lifecycle import apply_command

CHECKS = Catalogue(
    "django_storage_celery_results_azure",
    CheckId("W001", "results travel over plain HTTP to a store that is not on this machine"),
    CheckId("W002", "the store is accessed without credentials"),
    *OBJECT_STORE_CHECKS.pick("E010", "E011", "E012", "E013", "E014", "E015", "I010"),
    CheckId(
        "I012",
        "expiry lives in the account's lifecycle policy, out of the check's reach: how to expire results",
    ),
)
PUBLIC_LEVELS = {"blob": "any blob, by name", "container": "any blob, and the listing of all of them"}
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
DATA_ROLE = "the Storage Blob Data Contributor role on the container (or a SAS with racwdl)"


def check_settings(adapter: Any, config: Any = None) -> list[checks.CheckMessage]:
    """Findings from the configuration alone (no request)."""
    client = adapter.client
    found: list[checks.CheckMessage] = []
    if client.scheme == "http" and urlsplit(client.url).hostname not in LOOPBACK:
        found.append(
            CHECKS.message(
                "W001",
                f"Celery results in {adapter.describe()} travel over plain HTTP.",
                "Use https in the connection string's BlobEndpoint / DefaultEndpointsProtocol, "
                "or azure_ssl = True (AZURE_SSL).",
            )
        )
    if client.credential is None and "sig=" not in client.url:
        found.append(
            CHECKS.message(
                "W002",
                f"Celery results in {adapter.describe()} are accessed without credentials: "
                "writes fail unless the container is public, which would publish them.",
                f"Set {adapter.credential_settings}.",
            )
        )
    return found


class AzureProbe(Probe):
    adapter: AzureAdapter
    catalogue = CHECKS
    words = RoundTrip(
        write_hint=f"Grant {DATA_ROLE}.",
        read_hint=f"Grant {DATA_ROLE}.",
        delete_hint=f"Grant {DATA_ROLE}: forget() and cleanup() delete results.",
        create_condition="If-None-Match: * on Put Blob",
        update_condition="If-Match on Put Blob",
        stale_version='"0x8D000000000DEAD"',
        conditions_hint="Use Azure Blob Storage or Azurite, or set "
        "CELERY_RESULT_STORAGE_ADAPTER = 'generic'.",
        append_hint=f"Chords count their header tasks with Append Block: use Azure Blob Storage or "
        f"Azurite, and grant {DATA_ROLE}.",
    )
    network_hint = (
        "Check the connection string's BlobEndpoint, or account_name and endpoint_suffix "
        "(AZURE_CONNECTION_STRING, AZURE_ACCOUNT_NAME, AZURE_ENDPOINT_SUFFIX), and the network."
    )
    credentials_hint = (
        f"Check {AzureAdapter.credential_settings}, the SAS expiry, "
        "and the account's firewall and network rules."
    )
    preflight_doing = "reading the container"
    preflight_hint = f"Grant {DATA_ROLE}."

    @property
    def bucket_hint_also(self) -> str:  # type: ignore[override]
        return f" and the account (create it: az storage container create --name {self.adapter.container})"

    def first_request(self) -> Any:
        """The container's properties: it exists, the credentials work, and its public access level."""
        adapter = self.adapter
        level = adapter.client.get_container_properties(timeout=adapter.timeout).public_access
        if level in PUBLIC_LEVELS:
            self.add(
                "E015",
                f"the container's public access level is {level!r}: anyone can read {PUBLIC_LEVELS[level]}, "
                "task results included",
                f"Make it private: az storage container set-permission --name {adapter.container} "
                "--public-access off (or disallow blob public access on the account).",
            )

    def without_permission(self) -> None:
        self.add(
            "I010",
            "the credentials may not read the container's properties, so its public access level is unknown",
            "Check in the portal that the container's access level is Private.",
        )

    def after_round_trip(self, expires_seconds: float | None) -> None:
        if not expires_seconds:
            return
        adapter = self.adapter
        if adapter.prefix:
            how = (
                "or apply a lifecycle management policy once: "
                f"{self.catalogue.package}.lifecycle_policy(adapter, result_expires) writes it, "
                f"{apply_command(adapter)} applies it"
            )
        else:
            how = "a lifecycle policy needs a results location (CELERY_RESULT_STORAGE_CONFIG['location'])"
        self.add(
            "I012",
            f"Azure keeps lifecycle policies in the management plane, out of this check's reach: "
            f"expired results stay until cleanup() deletes them unless a policy deletes blobs under "
            f"{adapter.container}/{adapter.prefix} after {days(expiry_days(expires_seconds))} "
            f"(result_expires is {expires_seconds:g} s)",
            f"Run celery beat (it schedules celery.backend_cleanup daily), {how}.",
        )


check_connectivity = AzureProbe.check
