"""The operators' admin API on moto, for the routes whose contexts' stores have no
in-memory fake: the registry (merchants, terminals, events, rebate rates), campaigns and
enrolments, and jobs run by hand. Moved from test_operators_api.py, whose other routes
run on the fakes. Every test ends with the ledger invariants checked."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from terminal_agent.signing import public_key_pem
from tests.integration import test_operators_api as base
from tests.integration.test_operators_api import card_no, issue
from tests.operators import operators, with_identity  # noqa: F401  (fixtures)
from tests.terminals import new_key

# chalice's local gateway warns that it checks no IAM: that is what with_identity stands in for
pytestmark = pytest.mark.filterwarnings("ignore:IAMAuthorizer is not a supported in local mode")

admin = base.admin  # the same fixture, on tests/conftest.py's moto-backed services


# -- the registry ----------------------------------------------------------------------


def test_merchants_terminals_events_and_rates(admin, terminal_service):
    merchant = {"merchant_id": "M-1", "name": "新見精肉店", "area": "新見", "category": "食料品"}
    assert admin.post("/merchants", merchant) == (200, {**merchant, "rebate_bps": None})
    assert admin.post("/merchants", {**merchant, "merchant_id": "M-9", "name": "岡山商店"}, issuer="okayama")[0] == 200
    assert [m["merchant_id"] for m in admin.get("/merchants")[1]["merchants"]] == ["M-1"]

    pem = public_key_pem(new_key())
    terminal = {"terminal_id": "T-1", "mode": "store", "merchant_id": "M-1", "public_key": pem}
    status, added = admin.post("/terminals", terminal)
    assert status == 200 and added["status"] == "active" and not added["key_replaced"]
    assert admin.post("/terminals", terminal)[1]["code"] == "terminal_exists"
    assert admin.post("/terminals", terminal, issuer="okayama")[1]["code"] == "wrong_issuer"
    assert admin.post("/terminals/T-1/disable", issuer="okayama")[1]["code"] == "wrong_issuer"
    assert admin.post("/terminals", {**terminal, "terminal_id": "T-2", "public_key": "not a key"})[0] == 400
    assert admin.post("/terminals", {**terminal, "terminal_id": "T-3", "merchant_id": "M-9"})[0] == 400

    assert admin.post("/terminals/T-1/disable")[1]["status"] == "disabled"
    assert terminal_service.store.get_terminal("T-1").status.value == "disabled"
    assert admin.post("/terminals/T-1/enable")[1]["status"] == "active"
    assert admin.post("/terminals/T-404/enable")[0] == 404
    rotated = public_key_pem(new_key())
    status, replaced = admin.post("/terminals", {**terminal, "public_key": rotated, "replace_key": True})
    assert status == 200 and replaced["key_replaced"]
    assert terminal_service.store.get_terminal("T-1").public_key == rotated

    now = datetime.now(UTC)
    event = {"event_id": "E-1", "name": "健康ウォーク", "points": 500, "opens_at": now.isoformat(),
             "closes_at": (now + timedelta(hours=3)).isoformat()}
    assert admin.post("/events", event)[0] == 200
    assert admin.post("/events", event, issuer="okayama")[1]["code"] == "wrong_issuer"
    assert admin.post("/events", {**event, "event_id": "E-2", "opens_at": "2023-04-01T10:00:00"})[0] == 400
    status, added = admin.post("/terminals", {"terminal_id": "T-E", "mode": "event", "event_id": "E-1",
                                              "public_key": pem})
    assert status == 200 and added["event_id"] == "E-1"

    rate = {"rate_id": "R-1", "bps": 200, "starts_on": "2023-07-01", "ends_on": "2023-07-31", "merchant_id": "M-1"}
    assert admin.post("/rebate-rates", rate)[0] == 200
    assert [r.bps for r in terminal_service.rebates.rates("niimi")] == [200]
    assert admin.get("/merchants", issuer="nowhere")[1]["code"] == "unknown_issuer"


def test_campaigns_are_created_listed_and_cards_enrolled_by_number(admin, ledger, clock):
    idm = issue(ledger, clock, 1)
    issue(ledger, clock, 7, issuer="okayama")
    clock.set(date(2023, 4, 1))
    campaign = {"campaign_id": "mynumber-2", "name": "マイナポイント第2弾", "rate_bps": 2500, "cap": 5000,
                "threshold": 20000, "grant_day": 18, "starts_on": "2023-04-01", "ends_on": "2023-09-30",
                "excluded_kinds": ["point"]}
    status, created = admin.post("/campaigns", campaign)
    assert status == 200 and created["excluded_kinds"] == ["point"] and created["issuer"] == "niimi"
    assert admin.post("/campaigns", campaign)[1]["code"] == "campaign_exists"
    assert [c["campaign_id"] for c in admin.get("/campaigns")[1]["campaigns"]] == ["mynumber-2"]
    assert admin.get("/campaigns", issuer="okayama")[1]["campaigns"] == []

    enrol = {"card_number": card_no(1), "enrolled_on": "2023-04-02"}
    assert admin.post("/campaigns/mynumber-2/enrolments", enrol)[1]["enrolled_on"] == "2023-04-02"
    assert admin.post("/campaigns/mynumber-2/enrolments", {**enrol, "enrolled_on": "2023-04-03"})[1]["code"] == (
        "already_enrolled")
    assert admin.post("/campaigns/mynumber-2/enrolments", {**enrol, "card_number": card_no(7)})[1]["code"] == (
        "wrong_issuer")
    assert admin.post("/campaigns/nope/enrolments", enrol)[0] == 404
    assert [e.idm for e in admin_campaigns(admin).enrolments("niimi", "mynumber-2")] == [idm]


def admin_campaigns(admin):
    from chalicelib import services

    return services.operators().campaigns


# -- jobs -----------------------------------------------------------------------------


def test_a_job_runs_by_hand_for_one_issuer(admin, ledger, clock):
    idm = issue(ledger, clock, 1)
    clock.set(date(2023, 4, 24))

    status, answer = admin.post("/jobs/expiry/run")

    assert status == 200 and answer["job"] == "expiry"
    assert answer["report"]["issuer"] == "niimi" and answer["report"]["points"] == 5000
    assert ledger.card(idm).lots == () or all(lot.remaining == 0 for lot in ledger.card(idm).lots)
    assert admin.post("/jobs/expiry/run")[1]["report"]["points"] == 0  # exactly once
    for job in ("rebates", "campaigns", "dormancy", "reminders"):
        status, answer = admin.post(f"/jobs/{job}/run")
        assert status == 200 and answer["job"] == job, answer
    status, refused = admin.post("/jobs/everything/run")
    assert (status, refused["code"]) == (404, "unknown_job")
