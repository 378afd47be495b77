"""The object stores the suites run against: one StoreUnderTest per provider.

The contract suite (tests/test_object_stores.py), the behaviour suite and
the end-to-end tests run once per entry, under its preset's name.
"""

from support.stores.azure import AzureStore
from support.stores.base import Emulator, StoreUnderTest
from support.stores.gcs import GCSStore
from support.stores.s3 import S3Store

STORES: dict[str, type[StoreUnderTest]] = {store.preset: store for store in (S3Store, GCSStore, AzureStore)}

__all__ = ["STORES", "Emulator", "StoreUnderTest"]
