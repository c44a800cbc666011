"""The operators' admin API, its services on the in-memory stores: every route
IAM-authorized; card return, damage reissue and void name the operator's IAM ARN and the
reason on their entries, are idempotent by request id and refuse another issuer's cards;
grant lists and settings (the registry, campaigns and jobs by hand, on moto, are in
test_operators_registry_api.py). Every test ends with the ledger invariants checked."""

from __future__ import annotations

from datetime import date

import pytest
from chalice import IAMAuthorizer

from chalicelib.ledger.domain import Actor, CardStatus, Op, Source
from chalicelib.mypage.domain import mask_card_number
from chalicelib.operators.domain import LOCAL_OPERATOR
from chalicelib.schemas import document
from tests.fakes import fixtures as fakes
from tests.members import sign_up
from tests.operators import ARN, OTHER_ARN, AdminClient, operators, with_identity  # noqa: F401  (fixtures)

# chalice's local gateway warns that it checks no IAM: that is what with_identity stands in for
pytestmark = pytest.mark.filterwarnings("ignore:IAMAuthorizer is not a supported in local mode")

IMPORT = Actor("operator", "import")
BIRTH = "1980-04-01"
OPERATOR_ENTRY = {"kind": "operator", "id": ARN}

# The routes' rules run on the in-memory stores (tests/fakes/fixtures.py). The routes of
# contexts whose stores have no fake (the registry's rebate rates, campaigns, jobs) are
# tested on moto in test_operators_registry_api.py.
unchecked_ledger = fakes.unchecked_ledger
terminal_service = fakes.terminal_service
mypage_service = fakes.mypage_service


def card_no(n: int) -> str:
    return f"JW{n:015d}"


def idm_of(n: int) -> str:
    return f"0c{n:014x}"


def issue(ledger, clock, n: int, grants=((date(2022, 10, 24), 5000),), issuer: str = "niimi") -> str:
    idm = idm_of(n)
    ledger.open_card(idm=idm, card_number=card_no(n), issuer_id=issuer, birth_date=BIRTH)
    for i, (day, points) in enumerate(grants):
        clock.set(day)
        ledger.grant(idm, points, request_id=f"grant:{idm}:{i}", actor=IMPORT,
                     source=Source.INITIAL if i == 0 else Source.ADMIN)  # one initial grant per card
    return idm


@pytest.fixture
def admin(api, operators, with_identity, clock) -> AdminClient:  # noqa: F811
    clock.set(date(2023, 4, 1))
    return AdminClient(api)


def last_entry(ledger, idm: str):
    return ledger.history(idm, limit=1).entries[0]


def entries(ledger, idm: str) -> int:
    return ledger.card(idm).seq


# -- every route is IAM-authorized -----------------------------------------------------


def admin_routes():
    from app import app

    return {(path, method): entry for path, methods in app.routes.items() for method, entry in methods.items()
            if path.startswith("/api/admin/")}


def test_every_admin_route_is_served_with_an_iam_authorizer():
    routes = admin_routes()
    documented = {(path, method.upper()) for path, item in document()["paths"].items() if path.startswith("/api/admin/")
                  for method in item}
    assert len(routes) >= 16 and set(routes) == documented  # the blueprint is registered in app.py
    for (path, method), entry in routes.items():
        assert isinstance(entry.authorizer, IAMAuthorizer), f"{method} {path} is not IAM-authorized"
    for path, item in document()["paths"].items():
        if path.startswith("/api/admin/"):
            assert all(op["security"] == [{"sigv4": []}] for op in item.values())


def test_no_other_route_lives_under_the_admin_prefix_without_iam():
    from app import app

    for path, methods in app.routes.items():
        for entry in methods.values():
            if "/admin" in path:
                assert isinstance(entry.authorizer, IAMAuthorizer)


# -- return ------------------------------------------------------------------------------


def test_return_voids_every_point_closes_the_card_and_unlinks_it_from_every_member(
    admin, ledger, clock, mypage_service, outbox
):
    idm = issue(ledger, clock, 1, grants=((date(2022, 10, 24), 5000), (date(2022, 11, 30), 123)))
    hanako = sign_up(mypage_service, outbox, "hanako@example.jp", card_no(1), BIRTH)
    taro = sign_up(mypage_service, outbox, "taro@example.jp", card_no(1), BIRTH)  # a second member links it too
    clock.set(date(2023, 4, 1))

    status, result = admin.post("/cards/return", {"request_id": "ret-1", "card_number": card_no(1),
                                                  "reason": "death", "note": "届出 2023-03-30"})

    assert status == 200, result
    assert result == {"card_number": card_no(1), "reason": "death", "voided": 5123, "expired": 0,
                      "status": "returned"}
    card = ledger.card(idm)
    assert card.status is CardStatus.RETURNED
    assert ledger.balance(idm).balance == 0
    assert mypage_service.store.links(hanako.member_id) == []
    assert mypage_service.store.links(taro.member_id) == []
    assert mypage_service.store.unlink_card(idm) == 0  # nothing left from the card's side either
    entry = last_entry(ledger, idm)
    assert entry.kind == "void" and entry.actor.as_dict() == OPERATOR_ENTRY
    assert entry.reason == "return (death): 届出 2023-03-30"
    assert sum(m.amount for m in entry.movements if m.op is Op.VOID) == 5123
    assert ledger.verify(idm).ok


def test_a_repeated_return_answers_the_same_and_a_changed_one_is_refused(admin, ledger, clock):
    idm = issue(ledger, clock, 1)
    clock.set(date(2023, 4, 1))
    body = {"request_id": "ret-1", "card_number": card_no(1), "reason": "moving", "note": "転出"}
    first = admin.post("/cards/return", body)
    seq = entries(ledger, idm)

    assert admin.post("/cards/return", body) == first
    assert admin.post("/cards/return", body, arn=OTHER_ARN)[1]["code"] == "request_id_reused"
    assert admin.post("/cards/return", {**body, "reason": "death"})[1]["code"] == "request_id_reused"
    status, refused = admin.post("/cards/return", {**body, "request_id": "ret-2"})
    assert (status, refused["code"]) == (409, "card_closed")
    assert entries(ledger, idm) == seq  # one return, one entry


def test_a_return_of_another_issuers_card_is_refused_and_writes_nothing(admin, ledger, clock):
    idm = issue(ledger, clock, 7, issuer="okayama")
    clock.set(date(2023, 4, 1))
    seq, was = entries(ledger, idm), ledger.card(idm).status

    status, refused = admin.post("/cards/return", {"request_id": "r", "card_number": card_no(7), "reason": "death"})
    assert (status, refused["code"]) == (403, "wrong_issuer")
    for path, body in (("/cards/void", {"request_id": "v", "card_number": card_no(7), "note": "x"}),
                       ("/cards/lookup", {"card_number": card_no(7)}),
                       ("/cards/reissue", {"request_id": "ri", "card_number": card_no(7),
                                           "new_card_number": card_no(8), "new_idm": idm_of(8)})):
        assert admin.post(path, body)[1]["code"] == "wrong_issuer"
    assert ledger.card(idm).status is was and entries(ledger, idm) == seq
    assert ledger.store.idm_for_number(card_no(8)) is None  # the replacement was not opened either
    status, ok = admin.post("/cards/return", {"request_id": "r", "card_number": card_no(7), "reason": "death"},
                            issuer="okayama")
    assert status == 200 and ok["status"] == "returned"


# -- damage reissue ------------------------------------------------------------------------


def test_reissue_moves_the_lots_with_their_expiry_and_closes_the_broken_card(
    admin, ledger, clock, mypage_service, outbox
):
    old = issue(ledger, clock, 1, grants=((date(2022, 10, 24), 5000), (date(2022, 11, 30), 123)))
    hanako = sign_up(mypage_service, outbox, "hanako@example.jp", card_no(1), BIRTH)
    clock.set(date(2023, 4, 1))
    ledger.spend(old, 5050, request_id="pay-1", actor=Actor("terminal", "T-1", merchant="M-1"))
    before = {lot.expires_on: lot.remaining for lot in ledger.card(old).lots if lot.remaining}

    status, result = admin.post("/cards/reissue", {"request_id": "re-1", "card_number": card_no(1),
                                                   "new_card_number": card_no(2), "new_idm": idm_of(2),
                                                   "note": "磁気不良"})

    assert status == 200, result
    assert result == {"card_number": card_no(1), "new_card_number": card_no(2), "closed_as": "void",
                      "moved": 73, "expired": 0, "balance": 73}
    assert before == {date(2023, 5, 29): 73}
    new = idm_of(2)
    assert {lot.expires_on: lot.remaining for lot in ledger.card(new).lots if lot.remaining} == before
    assert ledger.card(old).status is CardStatus.VOID and ledger.balance(old).balance == 0
    assert ledger.store.get_card(new).birth_date == BIRTH  # the resident can link the replacement
    for idm, op in ((old, Op.TRANSFER_OUT), (new, Op.TRANSFER_IN)):
        entry = last_entry(ledger, idm)
        assert entry.kind == "transfer" and entry.actor.as_dict() == OPERATOR_ENTRY
        assert entry.reason == "damage reissue: 磁気不良" and {m.op for m in entry.movements} == {op}
    links = mypage_service.store.links(hanako.member_id)
    assert [(link.idm, link.card_number_masked) for link in links] == [(new, mask_card_number(card_no(2)))]
    assert mypage_service.card(hanako, links[0].link_id)["balance"] == 73


def test_a_failed_reissue_changes_neither_card_and_its_retry_completes(admin, ledger, clock, monkeypatch):
    old = issue(ledger, clock, 1)
    clock.set(date(2023, 4, 1))
    body = {"request_id": "re-1", "card_number": card_no(1), "new_card_number": card_no(2), "new_idm": idm_of(2)}
    real_commit = ledger.store.commit

    def fail(commit):
        raise ConnectionError("the network went away mid-transaction")

    monkeypatch.setattr(ledger.store, "commit", fail)
    assert admin.post("/cards/reissue", body)[0] == 500
    assert ledger.balance(old).balance == 5000 and not ledger.card(old).status.closed
    assert ledger.card(idm_of(2)).lots == () and ledger.card(idm_of(2)).status is CardStatus.ISSUED

    monkeypatch.setattr(ledger.store, "commit", real_commit)
    status, result = admin.post("/cards/reissue", body)
    assert status == 200 and result["moved"] == 5000
    assert admin.post("/cards/reissue", body) == (200, result)  # and a repeat answers the same
    assert ledger.balance(idm_of(2)).balance == 5000 and ledger.card(idm_of(2)).seq == 1


def test_reissue_onto_an_imported_replacement_keeps_its_points_and_refuses_a_mismatch(admin, ledger, clock):
    issue(ledger, clock, 1)
    issue(ledger, clock, 2, grants=((date(2023, 3, 1), 1000),))
    issue(ledger, clock, 3)
    clock.set(date(2023, 4, 1))

    status, refused = admin.post("/cards/reissue", {"request_id": "x", "card_number": card_no(1),
                                                    "new_card_number": card_no(2), "new_idm": idm_of(3)})
    assert (status, refused["code"]) == (409, "replacement_mismatch")
    status, refused = admin.post("/cards/reissue", {"request_id": "y", "card_number": card_no(1),
                                                    "new_card_number": card_no(9), "new_idm": idm_of(3)})
    assert (status, refused["code"]) == (409, "replacement_mismatch")  # that IDm is card 3's
    assert ledger.store.idm_for_number(card_no(9)) is None
    status, result = admin.post("/cards/reissue", {"request_id": "z", "card_number": card_no(1),
                                                   "new_card_number": card_no(2), "new_idm": idm_of(2)})
    assert status == 200 and result["balance"] == 6000
    status, refused = admin.post("/cards/reissue", {"request_id": "w", "card_number": card_no(1),
                                                    "new_card_number": card_no(8), "new_idm": idm_of(8)})
    assert (status, refused["code"]) == (409, "card_closed")
    assert ledger.store.idm_for_number(card_no(8)) is None  # no replacement opened for a closed card


# -- void ---------------------------------------------------------------------------------


def test_void_takes_the_points_and_closes_the_card_only_when_asked(admin, ledger, clock, mypage_service, outbox):
    kept = issue(ledger, clock, 1)
    closed = issue(ledger, clock, 2)
    hanako = sign_up(mypage_service, outbox, "hanako@example.jp", card_no(1), BIRTH)
    mypage_service.link_card(hanako, card_no(2), BIRTH)
    clock.set(date(2023, 4, 1))

    status, result = admin.post("/cards/void", {"request_id": "v-1", "card_number": card_no(1),
                                                "note": "二重発行の取消"})
    assert status == 200 and result == {"card_number": card_no(1), "voided": 5000, "expired": 0, "status": "issued"}
    status, result = admin.post("/cards/void", {"request_id": "v-2", "card_number": card_no(2), "note": "不正利用",
                                                "close": True})
    assert status == 200 and result["status"] == "void"

    assert ledger.card(kept).status is CardStatus.ISSUED and ledger.balance(kept).balance == 0
    assert ledger.card(closed).status is CardStatus.VOID
    assert [link.idm for link in mypage_service.store.links(hanako.member_id)] == [kept]
    entry = last_entry(ledger, kept)
    assert entry.actor.as_dict() == OPERATOR_ENTRY and entry.reason == "void: 二重発行の取消"
    assert admin.post("/cards/void", {"request_id": "v-1", "card_number": card_no(1), "note": "二重発行の取消"}) == (
        200, {"card_number": card_no(1), "voided": 5000, "expired": 0, "status": "issued"})
    # a kept card still takes grants
    ledger.grant(kept, 100, request_id="after-void", actor=IMPORT, source=Source.ADMIN)


# -- lookup -----------------------------------------------------------------------------


def test_card_lookup_shows_status_balance_lots_and_recent_history(admin, ledger, clock):
    idm = issue(ledger, clock, 1, grants=((date(2022, 10, 24), 5000), (date(2022, 11, 30), 123)))
    clock.set(date(2023, 4, 24))

    status, card = admin.post("/cards/lookup", {"card_number": card_no(1)})

    assert status == 200
    assert (card["card_number"], card["idm"], card["status"], card["balance"]) == (card_no(1), idm, "issued", 123)
    assert [(lot["points"], lot["expires_on"], lot["state"]) for lot in card["lots"]] == [
        (5000, "2023-04-23", "expired"), (123, "2023-05-29", "live")]
    assert [(e["kind"], e["points"]) for e in card["history"]] == [("grant", 123), ("grant", 5000)]
    assert admin.post("/cards/lookup", {"card_number": card_no(5)})[0] == 404


def test_refuses_a_request_without_identity_in_lambda_and_uses_a_placeholder_locally(
    admin, ledger, clock, monkeypatch
):
    idm = issue(ledger, clock, 1)
    issue(ledger, clock, 2)
    clock.set(date(2023, 4, 1))
    body = {"request_id": "v-1", "card_number": card_no(1), "note": "x"}

    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "chiiki-points-prod")
    status, refused = admin.post("/cards/void", body, arn=None)
    assert (status, refused["code"]) == (403, "no_operator_identity")
    assert admin.get("/merchants", arn=None)[0] == 403  # reads too
    assert ledger.balance(idm).balance == 5000
    assert admin.post("/cards/void", body)[0] == 200  # with a principal it goes through
    assert last_entry(ledger, idm).actor.as_dict() == OPERATOR_ENTRY

    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME")
    assert admin.post("/cards/void", {**body, "request_id": "v-2", "card_number": card_no(2)}, arn=None)[0] == 200
    assert last_entry(ledger, idm_of(2)).actor.as_dict() == {"kind": "operator", "id": LOCAL_OPERATOR}


def test_bodies_are_validated_against_the_document(admin, ledger, clock):
    issue(ledger, clock, 1)
    clock.set(date(2023, 4, 1))
    bad = [
        ("/cards/return", {"request_id": "r", "card_number": card_no(1), "reason": "bored"}),
        ("/cards/return", {"request_id": "r", "card_number": card_no(1), "reason": "other"}),  # needs a note
        ("/cards/void", {"request_id": "r", "card_number": card_no(1), "note": "  "}),
        ("/cards/reissue", {"request_id": "r", "card_number": card_no(1), "new_card_number": card_no(2),
                            "new_idm": "XYZ"}),
        ("/rebate-rates", {"rate_id": "R", "bps": 100, "starts_on": "2023-02-30", "ends_on": "2023-03-01"}),
        ("/grant-lists", {"list_id": "L", "reason": "x", "rows": []}),
    ]
    for path, body in bad:
        status, answer = admin.post(path, body)
        assert (status, answer["code"]) == (400, "invalid_request"), (path, answer)
    assert admin.post("/cards/return", {"request_id": "r", "card_number": card_no(1), "reason": "other",
                                        "note": "本人申出"})[0] == 200


# -- grant lists -----------------------------------------------------------------------


def test_a_grant_list_grants_each_card_once_with_the_operator_and_reason(admin, ledger, clock):
    first, second = issue(ledger, clock, 1), issue(ledger, clock, 2)
    issue(ledger, clock, 7, issuer="okayama")
    clock.set(date(2023, 4, 1))
    body = {"list_id": "volunteer-2023-04", "reason": "ボランティア 200pt",
            "rows": [{"card_number": card_no(1), "points": 200}, {"card_number": card_no(5), "points": 200},
                     {"card_number": card_no(2), "points": 200}, {"card_number": card_no(7), "points": 200}]}

    status, report = admin.post("/grant-lists", body)

    assert status == 200
    assert (report["granted"], report["points"]) == (2, 400)
    assert [(r["row"], r["reason"]) for r in report["rejected"]] == [
        (2, "no card with this card number"), (4, "the card belongs to another issuer")]
    again = admin.post("/grant-lists", body)[1]
    assert (again["granted"], again["points"], again["already_granted"]) == (0, 0, 2)  # the repeat finds them granted
    for idm in (first, second):
        assert ledger.balance(idm).balance == 5200
        entry = last_entry(ledger, idm)
        assert entry.actor.as_dict() == OPERATOR_ENTRY and entry.reason == "ボランティア 200pt"


def test_settings_are_shown_and_changed_and_the_rebate_day_follows_a_closure(admin, ledger):
    from dataclasses import replace

    from chalicelib.ledger.business_days import BusinessCalendar, rebate_grant_date

    status, settings = admin.get("/settings")
    assert status == 200 and settings["closures"] == [] and settings["rebate_bps"] == 100
    assert rebate_grant_date(BusinessCalendar(ledger.issuer("niimi").closures), 2022, 10) == date(2022, 11, 30)

    # a change made elsewhere since this container cached the settings is kept
    ledger.store.put_issuer(replace(ledger.store.get_issuer("niimi"), point_name="新見市ポイント"))
    status, changed = admin.post("/settings", {"closures": ["2022-11-30", "2022-11-29", "2022-11-30"]})
    assert status == 200 and changed["closures"] == ["2022-11-29", "2022-11-30"]
    assert {**changed, "closures": [], "point_name": settings["point_name"]} == settings
    assert changed["point_name"] == "新見市ポイント"
    # the job's calendar, read through the same ledger at once (not after the cache's minutes)
    assert rebate_grant_date(BusinessCalendar(ledger.issuer("niimi").closures), 2022, 10) == date(2022, 11, 28)
    assert admin.post("/settings", {"rebate_bps": 150, "point_name": "にいみポイント"})[1]["closures"] == [
        "2022-11-29", "2022-11-30"]
    assert (ledger.issuer("niimi").rebate_bps, ledger.issuer("niimi").point_name) == (150, "にいみポイント")

    for refused in ({}, {"closures": ["30 Nov"]}, {"closures": ["2022-02-30"]}, {"rebate_bps": -1},
                    {"time_zone": "UTC"}, {"point_name": ""}):
        status, body = admin.post("/settings", refused)
        assert status == 400 and body["code"] == "invalid_request", refused
    assert ledger.issuer("niimi").rebate_bps == 150
    assert admin.get("/settings", issuer="nowhere")[1]["code"] == "unknown_issuer"


def test_reconciliation_is_an_issuer_setting_of_the_admin_api(admin, ledger):
    status, settings = admin.get("/settings")
    assert status == 200 and settings["reconciliation"] is None  # the stage's default
    status, changed = admin.post("/settings", {"reconciliation": True})
    assert status == 200 and changed["reconciliation"] is True
    assert ledger.issuer("niimi").requires_reconciliation(False) is True
    status, body = admin.post("/settings", {"reconciliation": "yes"})
    assert status == 400 and body["code"] == "invalid_request"
    assert admin.post("/settings", {"reconciliation": None})[1]["reconciliation"] is None
