"""Services built on first use from the settings, one per Lambda container.

Each context is imported here on first use, not at import time: a cold start loads only
what the invoked route needs (the terminal API's signature libraries, for instance)."""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .ledger.service import Ledger
    from .table import Table
    from .terminals.service import TerminalService


@lru_cache(maxsize=1)
def table() -> Table:
    from .table import Table

    return Table.from_settings()


@lru_cache(maxsize=1)
def ledger() -> Ledger:
    from .ledger.service import Ledger
    from .ledger.store import CardStore

    return Ledger(CardStore(table()))


@lru_cache(maxsize=1)
def terminals() -> TerminalService:
    from .terminals.service import TerminalService
    from .terminals.store import TerminalStore

    return TerminalService(ledger(), TerminalStore(table()))
