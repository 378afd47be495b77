"""Checks of an Azure result store: its settings, and a connectivity probe.

``check_settings`` runs with every ``manage.py check`` and makes no request.
``check_connectivity`` talks to Azure (``manage.py check --deploy``, or call
it directly): container and credentials, the container's public access level,
a put/get/delete round trip under the results prefix, ETag conditions, and
how to expire results. Messages name the account, container and prefix, never
credentials (a SAS token rides in the client's URL: it is never shown).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ServiceRequestError,
)
from django.core import checks

from django_storage_celery_results.adapters import StorageAdapter
from django_storage_celery_results.probe import (
    BAD_CREDENTIALS,
    NO_BUCKET,
    PUBLIC,
    UNREACHABLE,
    Finding,
    Probe,
    RoundTrip,
    expiry_days,
)

from .adapter import AzureAdapter, error_code

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
DATA_ROLE = "the Storage Blob Data Contributor role on the container (or a SAS with racwdl)"
#: Warnings from the settings alone: plain HTTP, no credentials.
PLAIN_HTTP, ANONYMOUS = 1, 2
#: Infos: the container's properties are unreadable; expiry lives in the management plane.
PROPERTIES_UNREADABLE, EXPIRY_ELSEWHERE = 10, 11


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
                id=f"{AzureProbe.package}.W{PLAIN_HTTP:03d}",
            )
        )
    if client.credential is None and "sig=" not in client.url:
        found.append(
            checks.Warning(
                f"Celery results in {adapter.describe()} are accessed without credentials: "
                "writes fail unless the container is public, which would publish them.",
                hint=f"Set {CREDENTIAL_SETTINGS}.",
                id=f"{AzureProbe.package}.W{ANONYMOUS:03d}",
            )
        )
    return found


class AzureProbe(Probe):
    package = "django_storage_celery_results_azure"
    errors = (AzureError,)

    def code(self, exc: BaseException) -> str:
        if isinstance(exc, HttpResponseError):
            return error_code(exc) or str(exc.status_code or type(exc).__name__)
        return type(exc).__name__

    def diagnose(self, doing: str, exc: BaseException) -> Finding | None:
        assert isinstance(self.adapter, AzureAdapter)
        if isinstance(exc, ServiceRequestError):
            return Finding(
                f"cannot reach the blob endpoint while {doing} ({type(exc).__name__})",
                "Check the connection string's BlobEndpoint, or account_name and endpoint_suffix "
                "(AZURE_CONNECTION_STRING, AZURE_ACCOUNT_NAME, AZURE_ENDPOINT_SUFFIX), and the network.",
                UNREACHABLE,
            )
        code = self.code(exc)
        if code == "ContainerNotFound":
            container = self.adapter.container
            return Finding(
                f"the container {container!r} does not exist",
                f"Create it (az storage container create --name {container}), "
                "or fix azure_container (AZURE_CONTAINER) and the account.",
                NO_BUCKET,
            )
        if code in CREDENTIAL_CODES or isinstance(exc, ClientAuthenticationError):
            return Finding(
                f"Azure rejected the credentials while {doing} ({code})",
                f"Check {CREDENTIAL_SETTINGS}, the SAS expiry, and the account's firewall and network rules.",
                BAD_CREDENTIALS,
            )
        return None


ROUND_TRIP = RoundTrip(
    write_hint=f"Grant {DATA_ROLE}.",
    read_hint=f"Grant {DATA_ROLE}.",
    delete_hint=f"Grant {DATA_ROLE}: forget() and cleanup() delete results.",
    create_condition="If-None-Match: * on Put Blob",
    update_condition="If-Match on Put Blob",
    stale_version='"0x8D000000000DEAD"',
    conditions_hint="Use Azure Blob Storage or Azurite, or set CELERY_RESULT_STORAGE_ADAPTER = 'generic'.",
)


def check_connectivity(
    adapter: StorageAdapter, expires_seconds: float | None = None
) -> list[checks.CheckMessage]:
    """Talk to Azure and report what would break or leak; [] when all is well."""
    assert isinstance(adapter, AzureAdapter)
    probe = AzureProbe(adapter)
    if _check_container(probe, adapter) and probe.round_trip(ROUND_TRIP) and expires_seconds:
        _explain_expiry(probe, adapter, expires_seconds)
    return probe.messages


def _check_container(probe: AzureProbe, adapter: AzureAdapter) -> bool:
    """Container reachable, credentials valid, its public access level; False stops the check."""
    try:
        properties = adapter.client.get_container_properties(timeout=adapter.timeout)
    except AzureError as exc:
        if not (isinstance(exc, HttpResponseError) and error_code(exc) in PERMISSION_CODES):
            probe.report("reading the container", exc, f"Grant {DATA_ROLE}.")
            return False
        probe.info(
            "the credentials may not read the container's properties, so its public access level is unknown",
            "Check in the portal that the container's access level is Private.",
            PROPERTIES_UNREADABLE,
        )
        return True
    level = properties.public_access
    if level in PUBLIC_LEVELS:
        probe.fail(
            f"the container's public access level is {level!r}: anyone can read {PUBLIC_LEVELS[level]}, "
            "task results included",
            f"Make it private: az storage container set-permission --name {adapter.container} "
            "--public-access off (or disallow blob public access on the account).",
            PUBLIC,
        )
    return True


def _explain_expiry(probe: AzureProbe, adapter: AzureAdapter, expires_seconds: float) -> None:
    if adapter.prefix:
        how = (
            "or apply a lifecycle management policy once: "
            f"{probe.package}.lifecycle_policy(adapter, result_expires) writes it, "
            "az storage account management-policy create --account-name "
            f"{adapter.client.account_name} --resource-group <group> --policy @policy.json applies it"
        )
    else:
        how = "a lifecycle policy needs a results location (CELERY_RESULT_STORAGE_CONFIG['location'])"
    probe.info(
        f"Azure keeps lifecycle policies in the management plane, out of this check's reach: "
        f"expired results stay until cleanup() deletes them unless a policy deletes blobs under "
        f"{adapter.container}/{adapter.prefix} after {expiry_days(expires_seconds)} days "
        f"(result_expires is {expires_seconds:g} s)",
        f"Run celery beat (it schedules celery.backend_cleanup daily), {how}.",
        EXPIRY_ELSEWHERE,
    )
