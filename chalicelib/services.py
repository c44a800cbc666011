"""Services built on first use from the settings, one per Lambda container."""

from __future__ import annotations

from functools import lru_cache

from .ledger.service import Ledger
from .ledger.store import CardStore


@lru_cache(maxsize=1)
def ledger() -> Ledger:
    return Ledger(CardStore.from_settings())
