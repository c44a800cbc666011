"""Make moto's DynamoDB serializable, as DynamoDB is.

moto checks a transaction's conditions and applies its writes without a lock, so two
threads can both pass a version condition and both write. DynamoDB never allows that.
Wrapping every backend method in one re-entrant lock gives moto the isolation the
ledger relies on, so concurrency tests exercise our code, not moto's races.
"""

from __future__ import annotations

import functools
import threading

_LOCK = threading.RLock()
_PATCHED = "_chiiki_serialized"


def serialize_dynamodb() -> None:
    from moto.dynamodb.models import DynamoDBBackend

    if getattr(DynamoDBBackend, _PATCHED, False):
        return
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
