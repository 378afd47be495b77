"""Every GS_* Django setting and the GoogleCloudStorage constructor argument it feeds.

One table, as data: the preset and CELERY_RESULT_STORAGE_CONFIG are validated
against it (an unknown key names the closest valid one) and the README shows
it. GoogleCloudStorage reads these settings itself; a key in
CELERY_RESULT_STORAGE_CONFIG wins over the setting.
"""

from __future__ import annotations

from django_storage_celery_results.providers import Setting

#: constructor argument, the Django settings that feed it (first set one wins), meaning
GCS_SETTINGS = (
    Setting(
        "credentials",
        ("GS_CREDENTIALS",),
        "a google.auth credentials object; unset: application default credentials",
    ),
    Setting("project_id", ("GS_PROJECT_ID",), "project of the client; unset: the credentials' project"),
    Setting("bucket_name", ("GS_BUCKET_NAME",), "bucket"),
    Setting(
        "location",
        ("GS_LOCATION",),
        "object name prefix (folder) inside the bucket; preset: celery-results",
    ),
    Setting(
        "object_parameters",
        ("GS_OBJECT_PARAMETERS",),
        "blob properties of every object (storage_class, kms_key_name, metadata, cache_control, acl, ...)",
    ),
    Setting("default_acl", ("GS_DEFAULT_ACL",), "predefined ACL; preset: none sent (the bucket decides)"),
    Setting("file_overwrite", ("GS_FILE_OVERWRITE",), "overwrite in place; preset: True"),
    Setting(
        "custom_endpoint",
        ("GS_CUSTOM_ENDPOINT",),
        "host of storage.url() links only; the API endpoint is not moved by it",
    ),
    Setting("iam_sign_blob", ("GS_IAM_SIGN_BLOB",), "sign storage.url() links with the IAM signBlob API"),
    Setting("sa_email", ("GS_SA_EMAIL",), "service account that signs with iam_sign_blob"),
    Setting("querystring_auth", ("GS_QUERYSTRING_AUTH",), "signed URLs from storage.url()"),
    Setting("expiration", ("GS_EXPIRATION",), "signed URL lifetime"),
    Setting("gzip", ("GS_IS_GZIPPED",), "gzip on save() (results use result_compression)"),
    Setting("gzip_content_types", ("GZIP_CONTENT_TYPES",), "types gzipped on save()"),
    Setting("max_memory_size", ("GS_MAX_MEMORY_SIZE",), "storage.open() buffer (not used for results)"),
    Setting(
        "blob_chunk_size",
        ("GS_BLOB_CHUNK_SIZE",),
        "chunked storage.open() transfers (not used for results)",
    ),
)
