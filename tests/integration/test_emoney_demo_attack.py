"""Issue 12's demonstration, end to end through the signed terminal API, the rebate job
and a point payment: one store terminal's key tried to mint points by recording e-money
payments no card made (10,000,000 yen; then many just under the cap), and by having a
real-looking payment rebated, cancelling it and spending the rebate at the same store.
Every step is now refused or undone; the `ledger` fixture checks the invariants."""

from __future__ import annotations

from datetime import date

from chalicelib.ledger.domain import Op
from tests.integration.test_rebate_job import V1, World, clawbacks, jst, world  # noqa: F401, F811  (fixture)


def record(w: World, idm: str, amount: int, seq: int, at) -> tuple[int, dict]:
    w.clock.set(at)
    body = {"request_id": f"forged{seq}", "idm": idm, "amount": amount, "paid_at": at.isoformat(), "card_seq": seq}
    return w.tills["store"].post_at(f"{V1}/emoney-payments", body, w.clock.now)


def test_a_terminal_key_cannot_mint_points_through_emoney_records(world):  # noqa: F811
    card = world.card(1)  # 5,000 pt from the city
    rebates = world.terminals.rebates

    # 1. A payment of 10,000,000 yen is no card's payment.
    status, body = record(world, card, 10_000_000, 1, jst(2022, 10, 10, 10))
    assert (status, body["code"]) == (400, "amount_over_limit")

    # 2. Many payments just under the cap stop at the card's limit for the day (100,000 yen)...
    answers = [record(world, card, 19_999, 10 + n, jst(2022, 10, 10, 11, n)) for n in range(10)]
    assert [status for status, _ in answers] == [200] * 5 + [409] * 5
    assert {body["code"] for status, body in answers if status == 409} == {"card_daily_limit"}
    # ... and spread over other cards they stop at the terminal's (1,000,000 yen).
    others = [world.card(n) for n in range(2, 14)]
    world.clock.set(jst(2022, 10, 11, 9))
    refused = []
    for n, other in enumerate(others):
        for k in range(5):
            status, body = record(world, other, 19_999, 100 + 5 * n + k, jst(2022, 10, 11, 9, n, k))
            if status != 200:
                refused.append(body["code"])
    assert len(refused) == 60 - 50 and set(refused) == {"terminal_daily_limit"}  # 50 × 19,999 ≤ 1,000,000
    assert rebates.accrual("niimi", "2022-10", card).yen == 5 * 19_999

    # 3. A payment of 20,000 yen is rebated, then cancelled: the rebate goes back at once.
    victim = world.card(20)
    status, _ = record(world, victim, 20_000, 500, jst(2022, 10, 12, 10))
    assert status == 200
    world.rebate(date(2022, 11, 30))
    assert world.ledger.balance(victim).balance == 5000 + 200
    world.cancel(victim, 500, date(2022, 12, 1))
    assert [e.movements[0].amount for e in clawbacks(world, victim)] == [200]
    assert world.ledger.balance(victim).balance == 5000

    # 4. So the rebate cannot be spent at the same store.
    world.clock.set(date(2022, 12, 1))
    status, body = world.tills["store"].post_at(
        f"{V1}/point-payments", {"request_id": "spend-the-rebate", "idm": victim, "amount": 5200}, world.clock.now)
    assert (status, body["code"], body["balance"]) == (409, "insufficient_points", 5000)
    assert world.ledger.totals(victim)[Op.SPEND] == 0
    account = rebates.rebate_accounts([victim])[victim]
    assert (account.earned, account.granted, account.carried) == (0, 0, 0)
