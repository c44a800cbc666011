"""No minting through e-money records (issue 12 item 1, §6.2, §7): one record is at most
20,000 yen; an issuer's daily limits cap what one terminal and one card may have
recorded per JST day, inside the record's own transaction; a refusal writes nothing
(not even the nonce), answers a 4xx with its own code and is counted for the alarm."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from chalicelib.ledger.domain import Actor, Source
from chalicelib.rebates.domain import Accrual
from tests.integration.test_admin_cli import creds, fields, gateway, run  # noqa: F401  (fixtures)
from tests.operators import AdminClient, operators, with_identity  # noqa: F401  (fixtures)
from tests.terminals import register_demo

V1 = "/api/terminal/v1"
IDM, NUMBER = "0123456789abcdef", "JW123456789012345"
JST = ZoneInfo("Asia/Tokyo")


@pytest.fixture
def tills(api, terminal_service, ledger):
    ledger.open_card(idm=IDM, card_number=NUMBER, issuer_id="niimi")
    ledger.grant(IDM, 5000, request_id="import:1", actor=Actor("operator", "ops"), source=Source.INITIAL)
    return register_demo(terminal_service, api)


def table_items(ledger) -> list[dict]:
    return ledger.store.connection.client.scan(TableName=ledger.store.table.name)["Items"]


def payment(n: int, amount: int, idm: str = IDM, at: datetime | None = None) -> dict:
    return {"request_id": f"e{n}", "idm": idm, "amount": amount,
            "paid_at": (at or datetime.now(UTC)).isoformat(), "card_seq": n}


def charge(n: int, amount: int, idm: str = IDM) -> dict:
    return {"request_id": f"g{n}", "idm": idm, "amount": amount, "kind": "cash",
            "charged_at": datetime.now(UTC).isoformat(), "card_seq": 1000 + n}


# -- one record is at most 20,000 yen -----------------------------------------------------


@pytest.mark.parametrize("amount", [20_001, 10_000_000])
def test_an_emoney_payment_over_20000_yen_is_refused_and_nothing_is_written(tills, terminal_service, ledger, amount):
    before = table_items(ledger)
    status, body = tills["store"].post(f"{V1}/emoney-payments", payment(1, amount))
    assert (status, body["code"]) == (400, "amount_over_limit")
    assert "20000" in body["message"]
    assert table_items(ledger) == before  # no record, no accrual, not even the nonce
    assert terminal_service.store.get_txn(IDM, 1) is None


def test_a_charge_over_20000_yen_is_refused_too(tills, terminal_service, ledger):
    before = table_items(ledger)
    status, body = tills["charger"].post(f"{V1}/charges", charge(1, 20_001))
    assert (status, body["code"]) == (400, "amount_over_limit")
    assert table_items(ledger) == before


def test_exactly_20000_yen_is_recorded(tills, terminal_service):
    assert tills["store"].post(f"{V1}/emoney-payments", payment(1, 20_000))[0] == 200
    assert tills["charger"].post(f"{V1}/charges", charge(1, 20_000))[0] == 200
    month = datetime.now(UTC).astimezone(JST).strftime("%Y-%m")
    assert terminal_service.rebates.accrual("niimi", month, IDM) == Accrual(IDM, month, 20_000, 20_000 * 100, 1)


def test_the_service_refuses_an_amount_over_the_cap_whatever_the_caller(tills, terminal_service):
    """The schema refuses it at the route; the service holds the rule too (jobs, tools)."""
    from chalicelib.table import Claim
    from chalicelib.terminals.errors import AmountOverLimit
    from chalicelib.terminals.service import Caller

    terminal = terminal_service.store.get_terminal("T-STORE")
    caller = Caller(terminal, Claim("NONCE#T-STORE#direct", "NONCE", error=RuntimeError, on_replay=True))
    with pytest.raises(AmountOverLimit):
        terminal_service.emoney_payment(caller, request_id="d1", idm=IDM, amount=20_001,
                                        paid_at=datetime.now(UTC), card_seq=7)


def test_the_openapi_schema_says_the_cap():
    from chalicelib.schemas import document

    schemas = document()["components"]["schemas"]
    for name in ("EmoneyPaymentRequest", "ChargeRequest"):
        ref = schemas[name]["properties"]["amount"]["$ref"].rsplit("/", 1)[1]
        assert schemas[ref]["maximum"] == 20_000


# -- the issuer's daily limits ----------------------------------------------------------------


def open_card(ledger, n: int) -> str:
    idm = f"0d{n:014x}"
    ledger.open_card(idm=idm, card_number=f"JW2{n:014d}", issuer_id="niimi")
    return idm


def test_many_records_just_under_the_cap_stop_at_the_cards_daily_limit(tills, terminal_service, ledger, capsys):
    assert ledger.issuer("niimi").emoney_card_daily_yen == 100_000  # the default
    till = tills["store"]
    for n in range(1, 6):  # five records of 19,999 yen: 99,995 yen
        assert till.post(f"{V1}/emoney-payments", payment(n, 19_999))[0] == 200
    capsys.readouterr()
    before = table_items(ledger)
    status, body = till.post(f"{V1}/emoney-payments", payment(6, 19_999))
    assert (status, body["code"]) == (409, "card_daily_limit")
    assert "100000" in body["message"]
    assert table_items(ledger) == before  # nothing written, not even the nonce
    from tests.integration.test_observability import emf, metric_values

    assert metric_values(emf(capsys.readouterr().out)) == {("EmoneyRecordRefused", (("reason", "card_day"),)): 1}
    # what still fits is recorded; the resend of a recorded payment is still its duplicate
    assert till.post(f"{V1}/emoney-payments", payment(7, 5))[0] == 200
    assert till.post(f"{V1}/emoney-payments", {**payment(1, 19_999), "request_id": "resend"})[1]["duplicate"] is True
    month = datetime.now(UTC).astimezone(JST).strftime("%Y-%m")
    assert terminal_service.rebates.accrual("niimi", month, IDM).yen == 100_000
    # charges count apart from payments: the card's charges today are still allowed
    assert tills["charger"].post(f"{V1}/charges", charge(1, 20_000))[0] == 200


def test_a_terminals_records_stop_at_its_daily_limit_whatever_the_cards(tills, terminal_service, ledger, capsys):
    ledger.change_issuer("niimi", emoney_terminal_daily_yen=50_000)
    cards = [open_card(ledger, n) for n in range(1, 5)]
    till = tills["store"]
    assert till.post(f"{V1}/emoney-payments", payment(1, 20_000, cards[0]))[0] == 200
    assert till.post(f"{V1}/emoney-payments", payment(2, 20_000, cards[1]))[0] == 200
    capsys.readouterr()
    status, body = till.post(f"{V1}/emoney-payments", payment(3, 20_000, cards[2]))
    assert (status, body["code"]) == (409, "terminal_daily_limit")
    from tests.integration.test_observability import emf, metric_values

    assert metric_values(emf(capsys.readouterr().out)) == {
        ("EmoneyRecordRefused", (("reason", "terminal_day"),)): 1}
    assert terminal_service.store.get_txn(cards[2], 3) is None
    assert till.post(f"{V1}/emoney-payments", payment(4, 10_000, cards[3]))[0] == 200  # exactly the limit
    # another terminal of the same merchant has its own day
    assert tills["store2"].post(f"{V1}/emoney-payments", payment(5, 20_000, cards[2]))[0] == 200


def test_records_dated_in_past_days_count_on_the_day_they_arrive(tills, terminal_service, ledger):
    """A key cannot spread its claims over the 31 days a late record may be dated."""
    ledger.change_issuer("niimi", emoney_terminal_daily_yen=40_000)
    cards = [open_card(ledger, n) for n in range(1, 4)]
    now = datetime.now(UTC)
    till = tills["store"]
    assert till.post(f"{V1}/emoney-payments", payment(1, 20_000, cards[0], now - timedelta(days=3)))[0] == 200
    assert till.post(f"{V1}/emoney-payments", payment(2, 20_000, cards[1], now - timedelta(days=9)))[0] == 200
    status, body = till.post(f"{V1}/emoney-payments", payment(3, 20_000, cards[2], now - timedelta(days=20)))
    assert (status, body["code"]) == (409, "terminal_daily_limit")


def test_a_limit_below_one_record_refuses_before_writing(tills, terminal_service, ledger):
    ledger.change_issuer("niimi", emoney_card_daily_yen=0)  # an operator's stop for every record
    before = table_items(ledger)
    status, body = tills["store"].post(f"{V1}/emoney-payments", payment(1, 1))
    assert (status, body["code"]) == (409, "card_daily_limit")
    assert table_items(ledger) == before


def test_records_at_once_cannot_overshoot_the_limit(tills, terminal_service, ledger):
    """Twelve records of 20,000 yen for one card at once: the limit is judged by DynamoDB
    in each record's own transaction, so exactly five fit in 100,000 yen."""
    from chalicelib.ledger.errors import Contended
    from chalicelib.table import Claim
    from chalicelib.terminals.errors import CardDailyLimit
    from chalicelib.terminals.service import Caller

    terminal = terminal_service.store.get_terminal("T-STORE")
    outcomes: list[str] = []
    lock = threading.Lock()

    def record(n: int) -> None:
        nonce = Claim(f"NONCE#T-STORE#race{n}", "NONCE", error=RuntimeError, on_replay=True)
        for _ in range(20):  # a transaction that lost a race to another is tried again, as a terminal would
            try:
                terminal_service.emoney_payment(Caller(terminal, nonce), request_id=f"r{n}", idm=IDM, amount=20_000,
                                                paid_at=datetime.now(UTC), card_seq=n)
                outcome = "recorded"
            except CardDailyLimit:
                outcome = "refused"
            except Contended:
                continue
            with lock:
                outcomes.append(outcome)
            return

    threads = [threading.Thread(target=record, args=(n,)) for n in range(1, 13)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["recorded"] * 5 + ["refused"] * 7
    month = datetime.now(UTC).astimezone(JST).strftime("%Y-%m")
    assert terminal_service.rebates.accrual("niimi", month, IDM).yen == 100_000


def test_a_payment_cancelled_the_day_it_was_recorded_gives_its_day_back(tills, terminal_service, ledger):
    till = tills["store"]
    for n in range(1, 6):
        assert till.post(f"{V1}/emoney-payments", payment(n, 20_000))[0] == 200
    assert till.post(f"{V1}/emoney-payments", payment(6, 20_000))[1]["code"] == "card_daily_limit"
    assert till.post(f"{V1}/emoney-payments/cancel", {"request_id": "x1", "idm": IDM, "card_seq": 1})[0] == 200
    assert till.post(f"{V1}/emoney-payments", payment(6, 20_000))[0] == 200
    assert till.post(f"{V1}/emoney-payments", payment(7, 1))[1]["code"] == "card_daily_limit"


def test_the_limits_are_issuer_settings_shown_and_changed_through_the_admin_api(
    api, operators, with_identity, clock, ledger, terminal_service  # noqa: F811
):
    clock.set(date(2023, 4, 1))
    admin = AdminClient(api)
    status, settings = admin.get("/settings")
    assert status == 200
    assert (settings["emoney_terminal_daily_yen"], settings["emoney_card_daily_yen"]) == (1_000_000, 100_000)
    status, changed = admin.post("/settings", {"emoney_terminal_daily_yen": 2_000_000, "emoney_card_daily_yen": 60_000})
    assert status == 200 and changed["emoney_card_daily_yen"] == 60_000
    issuer = ledger.issuer("niimi")
    assert (issuer.emoney_terminal_daily_yen, issuer.emoney_card_daily_yen) == (2_000_000, 60_000)
    for refused in ({"emoney_card_daily_yen": -1}, {"emoney_terminal_daily_yen": "many"},
                    {"emoney_terminal_daily_yen": 10**9}):
        status, body = admin.post("/settings", refused)
        assert (status, body["code"]) == (400, "invalid_request"), refused
    assert ledger.issuer("niimi").emoney_card_daily_yen == 60_000


def test_the_limits_are_set_through_the_cli(gateway, ledger, capsys):  # noqa: F811
    code, out, _ = run(gateway, "settings", "set", "--terminal-daily-yen", "500000", "--card-daily-yen", "40000",
                       capsys=capsys)
    assert code == 0 and fields(out)["emoney_card_daily_yen"] == "40000"
    issuer = ledger.issuer("niimi")
    assert (issuer.emoney_terminal_daily_yen, issuer.emoney_card_daily_yen) == (500_000, 40_000)
    code, out, _ = run(gateway, "settings", "show", capsys=capsys)
    assert fields(out)["emoney_terminal_daily_yen"] == "500000"
