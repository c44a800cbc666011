"""The ledger's business metrics, counted in one place above the ledger: a `Ledger` that
counts what each of its changes did, from the change's own result. `services.ledger()`
builds this one, so the terminal API, MyPage, the operators' API and every job count the
same way, and the ledger itself knows nothing of metrics.

A request retried with the same request id returns its original result and is counted
again: the metrics watch the service; the ledger's entries and the reports are the money.
"""

from __future__ import annotations

from typing import Any

from . import observability as obs
from .ledger.domain import Source
from .ledger.service import Ledger


class MeteredLedger(Ledger):
    def grant(self, idm: str, amount: int, *args: Any, **kwargs: Any) -> dict:
        result = super().grant(idm, amount, *args, **kwargs)
        granted = result.get("granted", 0)
        source = str(result.get("source") or kwargs.get("source") or "unknown")
        obs.count(obs.POINTS_GRANTED, granted, source=source)
        if granted and source == Source.REBATE.value:
            obs.count(obs.REBATES_GRANTED)
        return result

    def spend(self, idm: str, amount: int, *args: Any, **kwargs: Any) -> dict:
        result = super().spend(idm, amount, *args, **kwargs)
        obs.count(obs.POINTS_SPENT, result.get("spent", 0))
        return result

    def cancel_spend(self, idm: str, *args: Any, **kwargs: Any) -> dict:
        result = super().cancel_spend(idm, *args, **kwargs)
        obs.count(obs.POINTS_CANCELLED, result.get("cancelled", 0))
        obs.count(obs.POINTS_EXPIRED, result.get("expired", 0))
        return result

    def expire_due(self, idm: str, *args: Any, **kwargs: Any) -> dict:
        result = super().expire_due(idm, *args, **kwargs)
        obs.count(obs.POINTS_EXPIRED, result.get("expired", 0))
        return result

    def void(self, idm: str, *args: Any, **kwargs: Any) -> dict:
        result = super().void(idm, *args, **kwargs)
        obs.count(obs.POINTS_VOIDED, result.get("voided", 0))
        obs.count(obs.POINTS_EXPIRED, result.get("expired", 0))
        return result

    def take_back_rebate(self, idm: str, points: int, *args: Any, **kwargs: Any) -> dict:
        result = super().take_back_rebate(idm, points, *args, **kwargs)
        obs.count(obs.POINTS_VOIDED, result.get("taken_back", 0))
        return result
