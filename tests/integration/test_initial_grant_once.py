"""A card's initial grant happens once, whatever the path (issue 12 item 9): the demo
loader, an operator's script or an import, each with its own request id. A cards import
that lists a card already granted by another path reports it as already granted and
grants nothing. The `ledger` fixture checks the ledger invariants (one of them: at most
one initial grant per card) after each test."""

from __future__ import annotations

import threading
from datetime import date

import pytest

from chalicelib.ledger import errors
from chalicelib.ledger.domain import Actor, Source
from localdev.demo import FRESH, WORKED, load_demo
from tests.integration.test_imports import CARD_HEADER, World
from tests.operators import AdminClient, operators, with_identity  # noqa: F401  (fixtures)

pytestmark = pytest.mark.filterwarnings("ignore:IAMAuthorizer is not a supported in local mode")

OPERATOR = Actor("operator", "ops")


def initial_grants(ledger, idm: str) -> list[int]:
    return [e.entry.result["granted"] for e in ledger.store.entries(idm, newest_first=False)
            if e.entry.kind == "grant" and e.entry.result.get("source") == Source.INITIAL.value]


@pytest.fixture
def world(ledger, terminal_service, clock) -> World:
    return World(ledger, terminal_service, clock)  # today 2022-11-01


def test_a_second_initial_grant_under_another_request_id_is_refused_and_writes_nothing(ledger, clock):
    ledger.open_card(idm="0a00000000000001", card_number="JW000000000000001", issuer_id="niimi")
    first = ledger.grant("0a00000000000001", 5000, request_id="script:1", actor=OPERATOR, source=Source.INITIAL)
    before = ledger.card("0a00000000000001")
    with pytest.raises(errors.InitialAlreadyGranted):
        ledger.grant("0a00000000000001", 5000, request_id="import:niimi:initial:0a00000000000001", actor=OPERATOR,
                     source=Source.INITIAL)
    assert ledger.card("0a00000000000001") == before
    # the first request repeated is still answered from its record; other sources are not limited
    assert ledger.grant("0a00000000000001", 5000, request_id="script:1", actor=OPERATOR,
                        source=Source.INITIAL) == first
    ledger.grant("0a00000000000001", 200, request_id="admin:1", actor=OPERATOR, source=Source.ADMIN)
    assert initial_grants(ledger, "0a00000000000001") == [5000]
    assert ledger.balance("0a00000000000001").balance == 5200


def test_initial_grants_racing_under_different_request_ids_grant_once(ledger):
    idm = "0a00000000000002"
    ledger.open_card(idm=idm, card_number="JW000000000000002", issuer_id="niimi")
    outcomes: list[str] = []

    def grant(n: int) -> None:
        try:
            ledger.grant(idm, 5000, request_id=f"path-{n}", actor=OPERATOR, source=Source.INITIAL)
            outcomes.append("granted")
        except errors.InitialAlreadyGranted:
            outcomes.append("refused")

    threads = [threading.Thread(target=grant, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["granted"] + ["refused"] * 5
    assert initial_grants(ledger, idm) == [5000] and ledger.balance(idm).balance == 5000


def test_a_cards_import_listing_demo_cards_grants_nothing_again(world, clock):
    load_demo(world.ledger.store, now=clock)
    balances = {spec.idm: world.ledger.balance(spec.idm).balance for spec in (FRESH, WORKED)}
    text = (f"{CARD_HEADER}\n"
            f"{FRESH.card_number},{FRESH.idm},{FRESH.birth_date},5000,2022-11-01\n"
            f"{WORKED.card_number},{WORKED.idm},{WORKED.birth_date},5000,2022-10-24\n")

    report = world.drop("niimi/cards/with-demo-cards.csv", text)

    assert (report.tally.imported, report.tally.unchanged, report.tally.rejected, report.tally.points) == (0, 2, 0, 0)
    for spec in (FRESH, WORKED):
        assert initial_grants(world.ledger, spec.idm) == [5000]
        assert world.ledger.balance(spec.idm).balance == balances[spec.idm]
    # listed with another grant date: rejected, saying what the card got
    other = world.drop("niimi/cards/other-date.csv",
                       f"{CARD_HEADER}\n{FRESH.card_number},{FRESH.idm},{FRESH.birth_date},3000,2022-10-30\n")
    assert [(r.row, r.reason) for r in other.rejections] == [
        (2, "the card already had its initial grant (5000 points from 2022-11-01); nothing was changed")]
    summary, rejected = world.result("niimi/cards/other-date.csv")
    assert (summary["imported"], summary["rejected"], summary["points granted"]) == ("0", "1", "0")
    assert initial_grants(world.ledger, FRESH.idm) == [5000]


def test_cards_granted_by_an_operators_script_then_reissued_through_the_admin_api_then_imported(
        world, api, operators, with_identity, clock):  # noqa: F811
    ledger = world.ledger
    old, new = ("0c00000000000001", "JW000000000000011"), ("0c00000000000002", "JW000000000000012")
    ledger.open_card(idm=old[0], card_number=old[1], issuer_id="niimi", birth_date="1980-04-01")
    ledger.grant(old[0], 5000, request_id="script:old", actor=OPERATOR, source=Source.INITIAL,
                 granted_on=date(2022, 10, 24))
    status, answer = AdminClient(api).post("/cards/reissue", {"request_id": "re-1", "card_number": old[1],
                                                              "new_card_number": new[1], "new_idm": new[0]})
    assert (status, answer["moved"]) == (200, 5000)
    text = (f"{CARD_HEADER}\n{old[1]},{old[0]},1980-04-01,5000,2022-10-24\n"
            f"{new[1]},{new[0]},1980-04-01,5000,2022-10-24\n")

    report = world.drop("niimi/cards/batch.csv", text)
    again = world.drop("niimi/cards/batch-again.csv", text)

    # the broken card had its initial grant (by the script): unchanged, and no grant to a void card
    assert (report.tally.unchanged, report.tally.imported, report.tally.rejected) == (1, 1, 0)
    assert initial_grants(ledger, old[0]) == [5000]
    # the replacement gets its own initial grant once (the reissue moved the old card's lots, it granted none)
    assert initial_grants(ledger, new[0]) == [5000]
    assert (again.tally.unchanged, again.tally.imported, again.tally.points) == (2, 0, 0)
    assert ledger.balance(new[0]).balance == 10_000
