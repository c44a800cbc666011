"""Give moto's DynamoDB the isolation and cost shape of DynamoDB.

1. Serializable: moto checks a transaction's conditions and applies its writes without
   a lock, so two threads can both pass a version condition and both write. DynamoDB
   never allows that. One re-entrant lock around every backend method fixes it, so
   concurrency tests exercise our code, not moto's races.
2. Transactions that cost what they touch: moto backs up every table a transaction
   names with a deep copy, so each transaction costs O(table size) and any benchmark of
   a job that writes N cards grows as N². We back up only the items the transaction
   touches and restore those on failure, as DynamoDB's own cost suggests.
3. Queries that read their partition: moto answers a Query on the table's key by
   sorting every item of the table, so a job that queries a month's partitions costs
   O(table). We let it see only the partition asked for, as DynamoDB reads only that.
4. Sorts that compare each key once: moto sorts items (every Scan, every index Query)
   by their key DynamoTypes, whose every comparison computes both values again (most of
   a report's time in moto). We sort by those same values, computed once per item:
   the same order.

And one for S3: moto answers ListObjectVersions by deep-copying every version of every
key of the bucket before it filters by the prefix, so the audit's read of one day's
anchor file costs O(anchors bucket). We let the listing see only the keys under its
prefix, as S3 reads only those.
"""

from __future__ import annotations

import copy
import functools
import threading
from typing import Any

_LOCK = threading.RLock()
_PATCHED = "_chiiki_serialized"


def serialize_dynamodb() -> None:
    from moto.dynamodb.models import DynamoDBBackend

    if getattr(DynamoDBBackend, _PATCHED, False):
        return
    DynamoDBBackend.transact_write_items = _touched_items_backup(DynamoDBBackend.transact_write_items)
    _partition_queries()
    _sorts_by_value()
    _s3_versions_by_prefix()
    for name, method in list(vars(DynamoDBBackend).items()):
        if name.startswith("_") or not callable(method) or isinstance(method, (staticmethod, classmethod)):
            continue
        setattr(DynamoDBBackend, name, _locked(method))
    setattr(DynamoDBBackend, _PATCHED, True)


def _locked(method):
    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        with _LOCK:
            return method(*args, **kwargs)

    return wrapper


def _partition_queries() -> None:
    from moto.dynamodb.models.table import Table

    query = Table.query

    @functools.wraps(query)
    def wrapper(table, hash_key, *args, **kwargs):
        index_name = args[6] if len(args) > 6 else kwargs.get("index_name")
        if index_name or hash_key is None:
            return query(table, hash_key, *args, **kwargs)
        everything = table.items
        partition = everything.get(hash_key)
        table.items = {hash_key: partition} if partition is not None else {}
        try:  # safe: the backend lock is held for the whole call
            return query(table, hash_key, *args, **kwargs)
        finally:
            table.items = everything

    Table.query = wrapper


def _sorts_by_value() -> None:
    """Table.all_items and Table.sorted_items as moto writes them, with a sort key of the
    keys' values (DynamoType compares by exactly these) instead of the DynamoTypes."""
    from moto.dynamodb.models.table import Table

    def all_items(table):
        items = []
        for hash_set in table.items.values():
            if table.range_key_attr:
                items.extend(hash_set.values())
            else:
                items.append(hash_set)
        return sorted(items, key=lambda x: (x.hash_key.cast_value, x.range_key.cast_value) if x.range_key
                      else x.hash_key.cast_value)

    def sorted_items(table, hash_key_attrs, range_key_attrs, items):
        attrs = table._generate_attr_to_sort_by(hash_key_attrs, range_key_attrs)
        items.sort(key=lambda x: tuple(x.attrs[key].cast_value for key in attrs))
        return items

    Table.all_items = functools.wraps(Table.all_items)(all_items)
    Table.sorted_items = functools.wraps(Table.sorted_items)(sorted_items)


def _touched_items_backup(transact_write_items):
    from moto.dynamodb.models.table import Table

    @functools.wraps(transact_write_items)
    def wrapper(backend, transact_items: list[dict[str, Any]]) -> None:
        saved = [_backup(backend, item) for item in transact_items]
        # moto's own backup deep-copies each table; make that copy the table itself and
        # undo the touched items ourselves instead. Safe because the lock is held.
        Table.__deepcopy__ = lambda table, memo: table
        try:
            return transact_write_items(backend, transact_items)
        except Exception:
            for table_name, key, old in reversed([s for s in saved if s is not None]):
                if old is not None:
                    backend.put_item(table_name, old)
                elif backend.get_item(table_name, key) is not None:
                    backend.delete_item(table_name, key)
            raise
        finally:
            del Table.__deepcopy__

    return wrapper


def _backup(backend, transact_item: dict[str, Any]):
    """(table name, key, the item's attributes before or None), or None if unknowable."""
    op_type, op = next(iter(transact_item.items()))
    try:
        table = backend.get_table(op["TableName"])
        if op_type == "Put":
            attrs = op["Item"]
            key = {table.hash_key_attr: attrs[table.hash_key_attr]}
            if table.range_key_attr is not None:
                key[table.range_key_attr] = attrs[table.range_key_attr]
        else:
            key = op["Key"]
        current = backend.get_item(op["TableName"], key)
    except Exception:  # a malformed request: moto's own call reports it
        return None
    return op["TableName"], key, copy.deepcopy(current.to_json()["Attributes"]) if current else None


class _Prefixed:
    """A bucket as one ListObjectVersions call sees it: only the keys under its prefix
    (their version lists shared, not copied: moto copies what it lists)."""

    def __init__(self, bucket: Any, prefix: str) -> None:
        self._bucket = bucket
        self.keys = type(bucket.keys)()
        for key, versions in bucket.keys.iterlists():
            if key.startswith(prefix):
                self.keys.setlist(key, versions)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._bucket, name)


def _s3_versions_by_prefix() -> None:
    from moto.s3.models import S3Backend

    listing, get_bucket = S3Backend.list_object_versions, S3Backend.get_bucket
    calls = threading.local()  # the prefix of this thread's listing, while it runs

    @functools.wraps(get_bucket)
    def bucket_for(backend, bucket_name: str):
        bucket = get_bucket(backend, bucket_name)
        prefix = getattr(calls, "prefix", None)
        return _Prefixed(bucket, prefix) if prefix else bucket

    @functools.wraps(listing)
    def wrapper(backend, bucket_name: str, *args, **kwargs):
        prefix = kwargs.get("prefix", args[3] if len(args) > 3 else "")
        calls.prefix = prefix or None
        try:
            return listing(backend, bucket_name, *args, **kwargs)
        finally:
            calls.prefix = None

    S3Backend.get_bucket = bucket_for
    S3Backend.list_object_versions = wrapper
