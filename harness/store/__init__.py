"""Durable, crash-safe storage of a campaign run: SQLite rows plus raw-trace files."""

from harness.store.db import DB_NAME, DuplicateMeasurement, ResultStore, StoreError
from harness.store.schema import SCHEMA_VERSION, STATUSES
from harness.store.storage import StorageError
from harness.store.traces import read_trace

__all__ = [
    "DB_NAME",
    "SCHEMA_VERSION",
    "STATUSES",
    "DuplicateMeasurement",
    "ResultStore",
    "StorageError",
    "StoreError",
    "read_trace",
]
