"""The ledger invariants, checked from outside: chains verify, no lot is negative,
the reported balance is the sum of live lots, every point is accounted for, and a card
has at most one initial grant."""

from __future__ import annotations

from chalicelib.ledger.domain import Source, invariant_violations
from chalicelib.ledger.service import Ledger


def card_problems(ledger: Ledger, idm: str) -> list[str]:
    report = ledger.verify(idm)
    problems = [] if report.ok else [f"chain broken at entry {report.bad_seq}: {report.problem}"]
    card = ledger.card(idm)
    problems += invariant_violations(ledger.totals(idm), card.lots)
    view = ledger.balance(idm)
    live = sum(lot.remaining for lot in card.lots if lot.valid_from <= view.day <= lot.expires_on)
    if view.balance != live:
        problems.append(f"balance {view.balance} != sum of live lots {live}")
    if sum(lot.remaining for lot in view.lots) != view.balance:
        problems.append("the listed lots do not add up to the balance")
    initial = [e for e in ledger.store.entries(idm, newest_first=False)
               if e.entry.kind == "grant" and e.entry.result.get("source") == Source.INITIAL.value]
    if len(initial) > 1:
        problems.append(f"{len(initial)} initial grants (at most one per card)")
    return [f"card {idm[:4]}…: {p}" for p in problems]


def assert_ledger_sound(ledger: Ledger) -> None:
    problems = [p for idm in ledger.store.card_ids() for p in card_problems(ledger, idm)]
    assert not problems, "\n".join(problems)
