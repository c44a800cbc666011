"""Services built on first use from the settings, one per Lambda container."""

from __future__ import annotations

from functools import lru_cache

from .ledger.service import Ledger
from .ledger.store import CardStore
from .table import Table
from .terminals.service import TerminalService
from .terminals.store import TerminalStore


@lru_cache(maxsize=1)
def table() -> Table:
    return Table.from_settings()


@lru_cache(maxsize=1)
def ledger() -> Ledger:
    return Ledger(CardStore(table()))


@lru_cache(maxsize=1)
def terminals() -> TerminalService:
    return TerminalService(ledger(), TerminalStore(table()))
