"""Every AZURE_* Django setting and the AzureStorage constructor argument it feeds.

One table, as data: the preset and CELERY_RESULT_STORAGE_CONFIG are validated
against it (an unknown key names the closest valid one) and the README shows
it. AzureStorage reads these settings itself; a key in
CELERY_RESULT_STORAGE_CONFIG wins over the setting.
"""

from __future__ import annotations

from django_storage_celery_results.providers import Setting

#: constructor argument, the Django settings that feed it (first set one wins), meaning
AZURE_SETTINGS = (
    Setting(
        "connection_string",
        ("AZURE_CONNECTION_STRING",),
        "connection string; wins over the account settings (Azurite: see Emulator)",
    ),
    Setting("account_name", ("AZURE_ACCOUNT_NAME",), "storage account name"),
    Setting("account_key", ("AZURE_ACCOUNT_KEY",), "storage account key (Shared Key)"),
    Setting("sas_token", ("AZURE_SAS_TOKEN",), "SAS token, used when there is no account key"),
    Setting(
        "token_credential",
        ("AZURE_TOKEN_CREDENTIAL",),
        "Microsoft Entra ID credential, e.g. azure.identity's DefaultAzureCredential() "
        "(managed identity); used when there is neither key nor SAS",
    ),
    Setting("azure_container", ("AZURE_CONTAINER",), "container"),
    Setting(
        "location",
        ("AZURE_LOCATION",),
        "name prefix (folder) inside the container; preset: celery-results",
    ),
    Setting(
        "endpoint_suffix",
        ("AZURE_ENDPOINT_SUFFIX",),
        "endpoint suffix of a sovereign cloud (core.windows.net)",
    ),
    Setting("azure_ssl", ("AZURE_SSL",), "use HTTPS with account_name"),
    Setting("custom_domain", ("AZURE_CUSTOM_DOMAIN",), "domain for storage.url()"),
    Setting("timeout", ("AZURE_CONNECTION_TIMEOUT_SECS",), "server-side timeout of each request, seconds"),
    Setting(
        "client_options",
        ("AZURE_CLIENT_OPTIONS",),
        "BlobServiceClient options: retry_total, connection_timeout, read_timeout, transport, ...",
    ),
    Setting("api_version", ("AZURE_API_VERSION",), "deprecated by django-storages: use client_options"),
    Setting(
        "object_parameters",
        ("AZURE_OBJECT_PARAMETERS",),
        "ContentSettings of every blob (cache_control, content_disposition, ...)",
    ),
    Setting("cache_control", ("AZURE_CACHE_CONTROL",), "Cache-Control of every blob"),
    Setting("overwrite_files", ("AZURE_OVERWRITE_FILES",), "overwrite in place on save(); preset: True"),
    Setting(
        "upload_max_conn",
        ("AZURE_UPLOAD_MAX_CONN",),
        "parallel connections of save() (not used for results)",
    ),
    Setting(
        "max_memory_size",
        ("AZURE_BLOB_MAX_MEMORY_SIZE",),
        "storage.open() buffer (not used for results)",
    ),
    Setting("expiration_secs", ("AZURE_URL_EXPIRATION_SECS",), "SAS lifetime of storage.url()"),
    Setting("default_content_type", (), "content type of save() when none is guessed (constructor only)"),
)
