"""Checks of an Azure result store: its settings, and a connectivity probe.

``check_settings`` runs with every ``manage.py check`` and makes no request.
``check_connectivity`` talks to Azure (``manage.py check --deploy``, or call
it directly): container and credentials, the container's public access level,
a put/get/delete round trip under the results prefix, ETag conditions, and
how to expire results. Messages name the account, container and prefix, never
credentials (a SAS token rides in the client's URL: it is never shown).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ServiceRequestError,
)
from django.core import checks

from django_storage_celery_results.adapters import CREATE, PutMode, StorageAdapter, Update
from django_storage_celery_results.exceptions import VersionMismatch

from .adapter import AzureAdapter, error_code
from .lifecycle import expiry_days

T = TypeVar("T")
#: checks.Error, checks.Warning or checks.Info
Level = Callable[..., checks.CheckMessage]

PROBE_PREFIX = "celery-check-"
PROBE = b"{}"
CREDENTIAL_CODES = frozenset(
    {
        "AuthenticationFailed",
        "AuthorizationFailure",
        "InvalidAuthenticationInfo",
        "NoAuthenticationInformation",
    }
)
#: The caller is known but not allowed this operation (RBAC role, SAS permissions).
PERMISSION_CODES = frozenset(
    {"AuthorizationPermissionMismatch", "AuthorizationResourceTypeMismatch", "AuthorizationServiceMismatch"}
)
PUBLIC_LEVELS = {"blob": "any blob, by name", "container": "any blob, and the listing of all of them"}
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
CREDENTIAL_SETTINGS = (
    "connection_string / account_key / sas_token / token_credential (AZURE_CONNECTION_STRING, "
    "AZURE_ACCOUNT_KEY, AZURE_SAS_TOKEN, AZURE_TOKEN_CREDENTIAL)"
)
LETTERS: dict[Level, str] = {checks.Error: "E", checks.Warning: "W", checks.Info: "I"}
DATA_ROLE = "the Storage Blob Data Contributor role on the container (or a SAS with racwdl)"


def _id(level: Level, number: int) -> str:
    return f"django_storage_celery_results_azure.{LETTERS[level]}{number:03d}"


def check_settings(adapter: StorageAdapter) -> list[checks.CheckMessage]:
    """Findings from the configuration alone (no request)."""
    assert isinstance(adapter, AzureAdapter)
    client = adapter.client
    found: list[checks.CheckMessage] = []
    if client.scheme == "http" and urlsplit(client.url).hostname not in LOOPBACK:
        found.append(
            checks.Warning(
                f"Celery results in {adapter.describe()} travel over plain HTTP.",
                hint="Use https in the connection string's BlobEndpoint / DefaultEndpointsProtocol, "
                "or azure_ssl = True (AZURE_SSL).",
                id=_id(checks.Warning, 1),
            )
        )
    if client.credential is None and "sig=" not in client.url:
        found.append(
            checks.Warning(
                f"Celery results in {adapter.describe()} are accessed without credentials: "
                "writes fail unless the container is public, which would publish them.",
                hint=f"Set {CREDENTIAL_SETTINGS}.",
                id=_id(checks.Warning, 2),
            )
        )
    return found


class _Report:
    """The messages of one connectivity check, each about the results' place."""

    FAILED: Any = object()

    def __init__(self, adapter: AzureAdapter) -> None:
        self.adapter = adapter
        self.messages: list[checks.CheckMessage] = []

    def add(self, level: Level, number: int, what: str, hint: str) -> None:
        text = f"Celery results in {self.adapter.describe()}: {what}."
        self.messages.append(level(text, hint=hint, id=_id(level, number)))

    def attempt(self, doing: str, call: Callable[[], T], hint: str) -> T:
        """The call's value, or FAILED after adding what went wrong."""
        try:
            return call()
        except AzureError as exc:
            self.add(checks.Error, *self.explain(doing, exc, hint))
            return self.FAILED

    def explain(self, doing: str, exc: AzureError, hint: str) -> tuple[int, str, str]:
        """The check number, what went wrong and the fix, for a failed request."""
        code = error_code(exc) if isinstance(exc, HttpResponseError) else ""
        if isinstance(exc, ServiceRequestError):
            return (
                12,
                f"cannot reach the blob endpoint while {doing} ({type(exc).__name__})",
                "Check the connection string's BlobEndpoint, or account_name and endpoint_suffix "
                "(AZURE_CONNECTION_STRING, AZURE_ACCOUNT_NAME, AZURE_ENDPOINT_SUFFIX), and the network.",
            )
        if code == "ContainerNotFound":
            return (
                10,
                f"the container {self.adapter.container!r} does not exist",
                f"Create it (az storage container create --name {self.adapter.container}), "
                "or fix azure_container (AZURE_CONTAINER) and the account.",
            )
        if code in CREDENTIAL_CODES or isinstance(exc, ClientAuthenticationError):
            return (
                11,
                f"Azure rejected the credentials while {doing} ({code or type(exc).__name__})",
                f"Check {CREDENTIAL_SETTINGS}, the SAS expiry, and the account's firewall and network rules.",
            )
        status = exc.status_code if isinstance(exc, HttpResponseError) else None
        return 13, f"{doing} failed ({code or status or type(exc).__name__})", hint


def check_connectivity(
    adapter: StorageAdapter, expires_seconds: float | None = None
) -> list[checks.CheckMessage]:
    """Talk to Azure and report what would break or leak; [] when all is well."""
    assert isinstance(adapter, AzureAdapter)
    report = _Report(adapter)
    if _check_container(report) and _check_round_trip(report) and expires_seconds:
        _explain_expiry(report, expires_seconds)
    return report.messages


def _check_container(report: _Report) -> bool:
    """Container reachable, credentials valid, its public access level; False stops the check."""
    adapter = report.adapter
    try:
        properties = adapter.client.get_container_properties(timeout=adapter.timeout)
    except AzureError as exc:
        if isinstance(exc, HttpResponseError) and error_code(exc) in PERMISSION_CODES:
            report.add(
                checks.Info,
                10,
                "the credentials may not read the container's properties, so its public access "
                "level is unknown",
                "Check in the portal that the container's access level is Private.",
            )
            return True
        report.add(checks.Error, *report.explain("reading the container", exc, f"Grant {DATA_ROLE}."))
        return False
    level = properties.public_access
    if level in PUBLIC_LEVELS:
        report.add(
            checks.Error,
            15,
            f"the container's public access level is {level!r}: anyone can read {PUBLIC_LEVELS[level]}, "
            "task results included",
            f"Make it private: az storage container set-permission --name {adapter.container} "
            "--public-access off (or disallow blob public access on the account).",
        )
    return True


def _check_round_trip(report: _Report) -> bool:
    """Write, read back, test the ETag conditions and delete a probe blob."""
    adapter = report.adapter
    name = f"{PROBE_PREFIX}{uuid.uuid4().hex}"
    version = report.attempt(
        "writing a probe blob", lambda: adapter.put(name, PROBE, CREATE), f"Grant {DATA_ROLE}."
    )
    if version is report.FAILED:
        return False
    try:
        stored = report.attempt(
            "reading the probe blob back", lambda: adapter.read(name), f"Grant {DATA_ROLE}."
        )
        if stored is not report.FAILED and (stored is None or stored.data != PROBE):
            report.add(
                checks.Error, 13, "a probe blob read back different", "Check the endpoint and any proxy."
            )
        ignored = [header for mode, header in _CONDITIONS if not _refused(adapter, name, mode)]
        if ignored:
            report.add(
                checks.Error,
                14,
                f"the store ignores {' and '.join(ignored)} on Put Blob, so a late duplicate could "
                "overwrite a SUCCESS result",
                "Use Azure Blob Storage or Azurite, or set CELERY_RESULT_STORAGE_ADAPTER = 'generic'.",
            )
    finally:
        report.attempt(
            "deleting the probe blob",
            lambda: adapter.delete(name),
            f"Grant {DATA_ROLE}: forget() and cleanup() delete results.",
        )
    return True


_CONDITIONS: tuple[tuple[PutMode, str], ...] = (
    (CREATE, "If-None-Match: *"),
    (Update('"0x8D000000000DEAD"'), "If-Match"),
)


def _refused(adapter: AzureAdapter, name: str, mode: PutMode) -> bool:
    """True when a conditional write that must lose did lose."""
    try:
        adapter.put(name, PROBE, mode)
    except VersionMismatch:
        return True
    except AzureError:
        return False  # any other answer means the condition was not understood
    return False


def _explain_expiry(report: _Report, expires_seconds: float) -> None:
    adapter = report.adapter
    if adapter.prefix:
        how = (
            "or apply a lifecycle management policy once: "
            "django_storage_celery_results_azure.lifecycle_policy(adapter, result_expires) writes it, "
            "az storage account management-policy create --account-name "
            f"{adapter.client.account_name} --resource-group <group> --policy @policy.json applies it"
        )
    else:
        how = "a lifecycle policy needs a results location (CELERY_RESULT_STORAGE_CONFIG['location'])"
    report.add(
        checks.Info,
        11,
        f"Azure keeps lifecycle policies in the management plane, out of this check's reach: "
        f"expired results stay until cleanup() deletes them unless a policy deletes blobs under "
        f"{adapter.container}/{adapter.prefix} after {expiry_days(expires_seconds)} days "
        f"(result_expires is {expires_seconds:g} s)",
        f"Run celery beat (it schedules celery.backend_cleanup daily), {how}.",
    )
