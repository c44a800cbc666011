"""SPEC §11 end to end: signed terminal requests through the Chalice app and the daily
jobs run day by day, with the clock moved from the card's issue to the shortfall
payment. Every figure of §11 is asserted where the resident or the clerk would see it."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from chalicelib.job_progress import JobState
from chalicelib.jobs.expiry import run_expiry
from chalicelib.jobs.rebate import run_rebates
from chalicelib.ledger.domain import Actor, Source
from chalicelib.reconciliation.service import Reconciliation
from chalicelib.reconciliation.store import ReconciliationStore
from tests.terminals import register_demo

V1 = "/api/terminal/v1"
JST = ZoneInfo("Asia/Tokyo")
IDM = "01010000de0000aa"


def test_the_worked_example_of_section_11(api, terminal_service, ledger, clock):
    till = register_demo(terminal_service, api)["store"]
    seq = iter(range(1, 100))

    def at(day: date, hour: int = 12) -> datetime:
        clock.set(datetime(day.year, day.month, day.day, hour, tzinfo=JST))
        return clock.now

    def post(path: str, body: dict) -> dict:
        status, answer = till.post_at(f"{V1}{path}", body, clock.now)
        assert status == 200, answer
        return answer

    def daily_jobs(first: date, last: date) -> None:
        """The schedules of every day from `first` to `last`, each at 00:05 JST."""
        day = first
        while day <= last:
            at(day, 0)
            run_expiry(ledger, "niimi", on=day, state=JobState())
            run_rebates(ledger, terminal_service.rebates, "niimi", on=day, state=JobState(),
                        reconciliation=Reconciliation(ledger, ReconciliationStore()))
            day += timedelta(days=1)

    def balance() -> dict:
        answer = post("/balance", {"idm": IDM})
        return {"balance": answer["balance"], "lots": [(lot["points"], lot["expires_on"]) for lot in answer["lots"]]}

    # Issued with 5,000 pt granted 2022-10-24, valid to 2023-04-23.
    at(date(2022, 10, 24))
    ledger.open_card(idm=IDM, card_number="JW010000000000099", issuer_id="niimi")
    ledger.grant(IDM, 5000, request_id="import:story", actor=Actor("operator", "ops"), source=Source.INITIAL)
    assert balance() == {"balance": 5000, "lots": [(5000, "2023-04-23")]}

    # October 2022: 12,345 yen of e-money payments at member terminals, the last one at
    # 23:59:59 JST on the 31st, which is still October.
    for when, amount in [(datetime(2022, 10, 25, 18, tzinfo=JST), 5000),
                         (datetime(2022, 10, 28, 9, tzinfo=JST), 7000),
                         (datetime(2022, 10, 31, 23, 59, 59, tzinfo=JST), 345)]:
        clock.set(when)
        recorded = post("/emoney-payments", {"request_id": f"e{amount}", "idm": IDM, "amount": amount,
                                             "paid_at": when.isoformat(), "card_seq": next(seq)})
        assert recorded["month"] == "2022-10"

    daily_jobs(date(2022, 10, 25), date(2022, 11, 29))
    at(date(2022, 11, 29))
    assert balance()["balance"] == 5000  # not before the last business day of November

    daily_jobs(date(2022, 11, 30), date(2022, 11, 30))
    at(date(2022, 11, 30))
    assert balance() == {"balance": 5123, "lots": [(5000, "2023-04-23"), (123, "2023-05-29")]}

    # 2023-04-01: a point payment of 5,050 empties the initial lot and leaves 73.
    daily_jobs(date(2022, 12, 1), date(2023, 4, 1))
    at(date(2023, 4, 1))
    paid = post("/point-payments", {"request_id": "p1", "idm": IDM, "amount": 5050, "allow_shortfall": False})
    assert (paid["spent"], paid["balance"]) == (5050, 73)
    assert balance()["lots"] == [(73, "2023-05-29")]

    # 2023-04-24: the balance is 73; 100 with shortfall allowed spends 73, 27 in cash.
    daily_jobs(date(2023, 4, 2), date(2023, 4, 24))
    at(date(2023, 4, 24))
    assert balance() == {"balance": 73, "lots": [(73, "2023-05-29")]}
    paid = post("/point-payments", {"request_id": "p2", "idm": IDM, "amount": 100, "allow_shortfall": True})
    assert (paid["spent"], paid["shortfall"], paid["balance"]) == (73, 27, 0)
    kinds = [e.kind for e in reversed(ledger.history(IDM, limit=50).entries)]
    assert kinds == ["grant", "grant", "spend", "spend"]  # nothing expired: the initial lot was spent out
