"""Charge-reward campaigns (§6.5) on moto's DynamoDB, with the MyNumber Point charge
campaign on ICOCA (seeds 001/002): 25 % of charges up to 5,000 pt, the full 5,000 pt on
the 18th of the month after 20,000 yen is reached, point and gas-station charges not
counted, only charges from the enrolment date. Charges are recorded through the
terminal service, as a charging terminal records them. Every test ends with the ledger
invariants checked (the `ledger` fixture)."""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from chalicelib.campaigns import keys
from chalicelib.campaigns.domain import Campaign, Enrolment
from chalicelib.campaigns.errors import (
    AlreadyEnrolled,
    CampaignExists,
    CannotExtend,
    EnrolmentClosed,
    InvalidCampaign,
    UnknownCampaign,
)
from chalicelib.campaigns.service import ACTOR, Campaigns, job_name, run_campaigns
from chalicelib.campaigns.store import CampaignStore
from chalicelib.job_progress import JobInterrupted, JobState
from chalicelib.ledger.domain import Actor, CardStatus, Op
from chalicelib.ledger.errors import WrongIssuer
from chalicelib.ledger.keys import SHARDS
from chalicelib.ledger.service import UnknownIssuer
from chalicelib.table import Claim
from chalicelib.terminals import keys as terminal_keys
from chalicelib.terminals.domain import Mode, Terminal
from chalicelib.terminals.errors import NonceReused
from chalicelib.terminals.service import Caller
from terminal_agent.signing import public_key_pem
from tests.terminals import new_key

JST = ZoneInfo("Asia/Tokyo")
MYNA = Campaign(
    issuer="niimi",
    campaign_id="mynapoint-2",
    name="マイナポイント第2弾（チャージ）",
    rate_bps=2500,
    cap=5000,
    threshold=20_000,
    grant_day=18,
    starts_on=date(2022, 1, 1),
    ends_on=date(2023, 5, 31),
    excluded_kinds=frozenset({"point-charge", "gas-station"}),
)
ENROLLED = date(2022, 10, 3)
SETTLES = date(2023, 6, 18)


def jst(day: date, hour: int = 12, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), JST)


@dataclass
class World:
    ledger: object
    terminals: object
    clock: object
    campaigns: Campaigns
    chargers: dict[str, Terminal] = field(default_factory=dict)
    issuer_of: dict[str, str] = field(default_factory=dict)
    card_seq: dict[str, int] = field(default_factory=dict)

    def card(self, n: int, issuer: str = "niimi", *, enrolled_on: date | None = ENROLLED) -> str:
        idm = f"{'0a' if issuer == 'niimi' else '0b'}{n:014x}"
        number = n if issuer == "niimi" else 10**9 + n
        self.ledger.open_card(idm=idm, card_number=f"JW{number:015d}", issuer_id=issuer)
        self.issuer_of[idm] = issuer
        if enrolled_on is not None:
            self.campaigns.enrol(issuer, MYNA.campaign_id, idm, enrolled_on)
        return idm

    def charge(self, idm: str, amount: int, at: datetime, kind: str = "cash", *, recorded_at: datetime | None = None):
        """Record a charge as the charging terminal's signed request does, made at `at`
        and sent at `recorded_at` (default: at once)."""
        self.clock.now = (recorded_at or at).astimezone(timezone.utc)
        terminal = self.chargers[self.issuer_of[idm]]
        nonce = Claim(*terminal_keys.nonce(terminal.terminal_id, uuid.uuid4().hex), error=NonceReused, on_replay=True)
        self.card_seq[idm] = self.card_seq.get(idm, 0) + 1
        return self.terminals.charge(
            Caller(terminal, nonce), request_id=uuid.uuid4().hex, idm=idm, amount=amount,
            charged_at=at.astimezone(timezone.utc), card_seq=self.card_seq[idm], kind=kind,
        )

    def run(self, day: date, issuer: str = "niimi", **kwargs):
        self.clock.set(day)
        return run_campaigns(self.campaigns, self.terminals, issuer, on=day, state=JobState(),
                             **kwargs)

    def campaign_grants(self, idm: str) -> list:
        return [e for e in self.ledger.history(idm, limit=100).entries if e.result.get("source") == "campaign"]

    def history(self, idm: str) -> list:
        entries = reversed(self.ledger.history(idm, limit=100).entries)
        return [(e.kind, e.movements, e.result, e.reason) for e in entries]


@pytest.fixture
def world(terminal_service, ledger, clock) -> World:
    w = World(ledger, terminal_service, clock, Campaigns(ledger, CampaignStore()))
    for issuer in ("niimi", "okayama"):
        terminal = Terminal(f"T-CHARGE-{issuer}", issuer, Mode.CHARGER, public_key_pem(new_key()))
        terminal_service.register_terminal(terminal)
        w.chargers[issuer] = terminal
        w.campaigns.create(replace(MYNA, issuer=issuer))
    return w


# -- the rules -----------------------------------------------------------------------------


def test_a_card_reaching_the_threshold_gets_the_cap_on_the_18th_of_the_next_month(world, ledger):
    october = world.card(1)
    november = world.card(2)
    world.charge(october, 12_000, jst(date(2022, 10, 5)))
    world.charge(october, 8_000, jst(date(2022, 10, 31), 23, 59))  # still October in Tokyo
    world.charge(november, 12_000, jst(date(2022, 10, 5)))
    world.charge(november, 8_000, jst(date(2022, 11, 1), 0, 30))  # 10-31 15:30 UTC: November in Tokyo

    assert world.run(date(2022, 11, 17)).granted == 0
    assert ledger.balance(october).balance == 0
    report = world.run(date(2022, 11, 18))
    assert (report.granted, report.points) == (1, 5000)
    [entry] = world.campaign_grants(october)
    assert (entry.day, entry.actor, entry.reason) == (date(2022, 11, 18), ACTOR, MYNA.name)
    assert entry.movements[0].op is Op.GRANT and entry.movements[0].amount == 5000
    assert (entry.result["valid_from"], entry.result["expires_on"]) == ("2022-11-18", "2023-05-17")
    assert world.campaign_grants(november) == []

    world.charge(october, 20_000, jst(date(2022, 12, 1)))  # after the cap: earns nothing more
    assert world.run(date(2022, 12, 17)).granted == 0
    assert world.run(date(2022, 12, 18)).points == 5000
    assert [e.day for e in world.campaign_grants(november)] == [date(2022, 12, 18)]
    world.run(SETTLES)
    assert ledger.totals(october)[Op.GRANT] == ledger.totals(november)[Op.GRANT] == 5000
    assert JobState().last_done(job_name(MYNA.campaign_id), "niimi") == SETTLES


def test_a_card_below_the_threshold_gets_a_quarter_of_its_charges_at_settlement(world, ledger):
    card = world.card(1)
    world.charge(card, 7_999, jst(date(2022, 10, 5)))
    world.charge(card, 6_000, jst(date(2023, 5, 31), 23, 50))  # the last day of the campaign
    assert world.run(date(2023, 6, 17)).granted == 0
    report = world.run(SETTLES)
    assert (report.granted, report.points) == (1, 3499)  # floor(13,999 × 25 %)
    [entry] = world.campaign_grants(card)
    assert (entry.day, entry.result["granted"], entry.reason) == (SETTLES, 3499, MYNA.name)


def test_excluded_kinds_charges_before_enrolment_and_after_the_end_are_not_counted(world, ledger):
    card = world.card(1)
    world.charge(card, 10_000, jst(date(2022, 10, 2)))  # the day before enrolment
    world.charge(card, 5_000, jst(ENROLLED, 9))  # the enrolment day counts
    world.charge(card, 10_000, jst(date(2022, 10, 4)), "gas-station")
    world.charge(card, 5_000, jst(date(2022, 10, 5)), "point-charge")
    world.charge(card, 6_000, jst(date(2022, 11, 7)))
    world.charge(card, 20_000, jst(date(2023, 6, 1)))  # after the end
    bystander = world.card(2, enrolled_on=None)  # charges, but never enrolled
    world.charge(bystander, 20_000, jst(date(2022, 10, 5)))

    world.run(date(2022, 12, 18))
    assert world.campaign_grants(card) == []  # 11,000 yen counted: below the threshold
    world.run(SETTLES)
    assert [e.result["granted"] for e in world.campaign_grants(card)] == [2750]
    assert world.campaign_grants(bystander) == []
    assert ledger.card(bystander).seq == 0


def test_a_charge_recorded_late_is_granted_when_its_month_closes(world, ledger):
    card = world.card(1)
    world.charge(card, 15_000, jst(date(2022, 10, 10)))
    world.run(date(2022, 11, 18))
    world.charge(card, 5_000, jst(date(2022, 10, 31)), recorded_at=jst(date(2022, 11, 25)))  # queued offline
    assert world.run(date(2022, 11, 25)).granted == 0
    assert world.run(date(2022, 12, 1)).granted == 0
    assert world.run(date(2022, 12, 2)).points == 5000  # October can take no more records
    assert [e.day for e in world.campaign_grants(card)] == [date(2022, 12, 2)]


def test_a_missed_day_is_caught_up(world, ledger):
    card = world.card(1)
    world.charge(card, 20_000, jst(date(2022, 10, 5)))
    world.run(date(2022, 11, 10))
    report = world.run(date(2022, 11, 21))  # no run on the 18th
    assert [c.days for c in report.campaigns if c.campaign_id == MYNA.campaign_id] == [[date(2022, 11, 18)]]
    [entry] = world.campaign_grants(card)
    assert (entry.day, entry.result["valid_from"], entry.result["granted"]) == (date(2022, 11, 21), "2022-11-21", 5000)


def test_a_returned_card_is_reported_and_the_others_granted(world, ledger):
    returned, kept = world.card(1), world.card(2)
    for idm in (returned, kept):
        world.charge(idm, 20_000, jst(date(2022, 10, 5)))
    ledger.void(returned, request_id="return-1", actor=Actor("operator", "ops"), reason="転出",
                close_as=CardStatus.RETURNED)
    [report] = world.run(date(2022, 11, 18)).campaigns
    assert (report.granted, report.refused) == (1, [(returned, "card_closed")])
    assert ledger.balance(kept).balance == 5000


def test_a_run_cannot_be_ahead_of_the_issuers_today(world, clock):
    clock.set(date(2022, 11, 17))
    with pytest.raises(ValueError):
        run_campaigns(world.campaigns, world.terminals, "niimi", on=date(2022, 11, 18),
                          state=JobState())


# -- exactly once -----------------------------------------------------------------------------


LAYOUT = [  # per card: enrolment date (None: not enrolled), then charges (day, yen, kind)
    (ENROLLED, [(date(2022, 10, 5), 20_000, "cash")]),  # reached in October: 5,000 on 11-18
    (ENROLLED, [(date(2022, 12, 5), 9_000, "cash"), (date(2023, 3, 1), 11_000, "cash")]),  # March: 04-18
    (ENROLLED, [(date(2022, 10, 5), 13_999, "cash")]),  # settled: 3,499
    (ENROLLED, [(date(2022, 10, 5), 20_000, "gas-station")]),  # nothing counted
    (None, [(date(2022, 10, 5), 20_000, "cash")]),  # not enrolled
    (date(2023, 1, 10), [(date(2023, 1, 9), 19_000, "cash"), (date(2023, 1, 10), 4_000, "cash")]),  # 1,000
    (ENROLLED, [(date(2022, 11, 5), 100, "cash")]),  # 25
    (ENROLLED, [(date(2022, 10, 5), 20_000, "cash")]),  # 5,000 on 11-18
]
EXPECTED = [5000, 5000, 3499, 0, 0, 1000, 25, 5000]


def build(world: World, issuer: str) -> list[str]:
    cards = []
    for n, (enrolled_on, charges) in enumerate(LAYOUT, start=1):
        idm = world.card(n, issuer, enrolled_on=enrolled_on)
        for day, yen, kind in charges:
            world.charge(idm, yen, jst(day), kind)
        cards.append(idm)
    return cards


def campaign_points(world: World, idm: str) -> int:
    return sum(e.result["granted"] for e in world.campaign_grants(idm))


def test_running_again_grants_nothing_twice(world, ledger):
    cards = build(world, "niimi")
    first = world.run(SETTLES)
    assert first.points == sum(EXPECTED)
    before = {c: (ledger.card(c).seq, ledger.card(c).head) for c in cards}

    assert world.run(SETTLES).granted == 0  # from its own progress: nothing left to sweep
    forced = world.run(SETTLES, since=MYNA.starts_on)  # every day swept again
    assert forced.granted == 0  # every card that earned is marked granted and not read again
    world.run(date(2023, 7, 31))
    assert {c: (ledger.card(c).seq, ledger.card(c).head) for c in cards} == before
    assert [campaign_points(world, c) for c in cards] == EXPECTED
    granted = [e.idm for e in world.campaigns.enrolments("niimi", MYNA.campaign_id) if e.granted]
    assert sorted(granted) == sorted(c for c, points in zip(cards, EXPECTED, strict=True) if points)


@pytest.mark.parametrize("k", [1, 4])
def test_a_run_killed_after_k_cards_then_run_again_ends_as_an_uninterrupted_run(world, ledger, k):
    whole = build(world, "okayama")  # the same cards under another issuer, run in one go
    resumed = build(world, "niimi")
    reference = world.run(SETTLES, "okayama")

    with pytest.raises(JobInterrupted):
        world.run(SETTLES, fail_after=k)
    assert 0 < sum(campaign_points(world, c) > 0 for c in resumed) < sum(p > 0 for p in EXPECTED)
    world.run(SETTLES)

    assert [world.history(c) for c in resumed] == [world.history(c) for c in whole]
    assert [campaign_points(world, c) for c in resumed] == EXPECTED
    assert reference.points == sum(EXPECTED)


def test_two_runs_at_once_grant_each_card_once(world, ledger, clock):
    cards = build(world, "niimi")
    clock.set(SETTLES)
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            barrier.wait()
            run_campaigns(world.campaigns, world.terminals, "niimi", on=SETTLES, state=JobState())
        except BaseException as exc:  # noqa: BLE001  (reported by the test thread)
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert [len(world.campaign_grants(c)) for c in cards] == [1 if points else 0 for points in EXPECTED]
    assert [campaign_points(world, c) for c in cards] == EXPECTED


# -- cost ---------------------------------------------------------------------------------


def test_the_job_reads_only_the_cards_that_charged_in_the_month_due(world, ledger, clock):
    reaching = [world.card(n) for n in range(1, 11)]
    for idm in reaching:
        world.charge(idm, 20_000, jst(date(2022, 10, 5)))
    idle = [world.card(n) for n in range(11, 31)]  # enrolled, never charged
    outsiders = [world.card(n, enrolled_on=None) for n in range(31, 36)]
    for idm in outsiders:
        world.charge(idm, 20_000, jst(date(2022, 10, 5)))

    calls: list[tuple[str, dict]] = []

    def hook(model, params, **_):
        calls.append((model.name, params))

    clock.set(date(2022, 11, 18))
    ledger.issuer("niimi")  # warm: the issuer's settings are read once per container
    events = ledger.store.connection.client.meta.events
    events.register("provide-client-params.dynamodb", hook, unique_id="test-campaign-count")
    try:
        report = run_campaigns(world.campaigns, world.terminals, "niimi", on=date(2022, 11, 18),
                               since=date(2022, 11, 18), state=JobState())
    finally:
        events.unregister("provide-client-params.dynamodb", unique_id="test-campaign-count")

    assert (report.granted, report.points) == (10, 50_000)
    ops = [op for op, _ in calls]
    assert "Scan" not in ops
    card_reads = [p["ExpressionAttributeValues"][":0"]["S"] for op, p in calls
                  if op == "Query" and p["ExpressionAttributeValues"][":0"]["S"].startswith(keys.CARD)]
    assert sorted(card_reads) == sorted(terminal_keys.txn_partition(i) for i in reaching)  # one query each
    assert ops.count("Query") == 1 + SHARDS + len(reaching)  # the campaigns, October's shards, the cards
    assert ops.count("TransactWriteItems") == len(reaching)
    assert ops.count("BatchGetItem") == 1 + len(reaching)  # enrolments and marks, then each grant's read
    assert len(calls) <= 3 * len(reaching) + SHARDS + 4
    read = {k["pk"]["S"] for op, p in calls if op == "BatchGetItem" for t in p["RequestItems"].values()
            for k in t["Keys"]}
    assert not read & {terminal_keys.txn_partition(i) for i in idle}


# -- setting up ------------------------------------------------------------------------------


def test_campaigns_are_created_once_and_listed(world):
    campaigns = world.campaigns
    assert campaigns.campaigns("niimi") == [MYNA]
    assert campaigns.campaign("niimi", MYNA.campaign_id) == MYNA
    with pytest.raises(CampaignExists):
        campaigns.create(replace(MYNA, cap=1))
    with pytest.raises(InvalidCampaign) as bad:
        campaigns.create(replace(MYNA, campaign_id="other", rate_bps=0, grant_day=0))
    assert len(bad.value.problems) == 2
    with pytest.raises(UnknownIssuer):
        campaigns.create(replace(MYNA, issuer="nowhere"))
    with pytest.raises(UnknownCampaign):
        campaigns.campaign("niimi", "other")
    walk = replace(MYNA, campaign_id="charge-2024", starts_on=date(2024, 1, 1), ends_on=date(2024, 3, 31),
                   excluded_kinds=frozenset(), validity_months=12)
    campaigns.create(walk)
    assert campaigns.campaigns("niimi") == [MYNA, walk]


def test_a_card_is_enrolled_once_on_one_date(world):
    card = world.card(1)
    campaigns = world.campaigns
    assert campaigns.enrol("niimi", MYNA.campaign_id, card, ENROLLED) == Enrolment(card, ENROLLED)  # again: fine
    with pytest.raises(AlreadyEnrolled):
        campaigns.enrol("niimi", MYNA.campaign_id, card, date(2022, 10, 4))
    with pytest.raises(EnrolmentClosed):
        campaigns.enrol("niimi", MYNA.campaign_id, world.card(2, enrolled_on=None), date(2023, 6, 1))
    with pytest.raises(WrongIssuer):
        campaigns.enrol("niimi", MYNA.campaign_id, world.card(3, "okayama", enrolled_on=None), ENROLLED)
    with pytest.raises(UnknownCampaign):
        campaigns.enrol("niimi", "other", card, ENROLLED)
    assert campaigns.enrolments("niimi", MYNA.campaign_id) == [Enrolment(card, ENROLLED)]


def test_an_extended_campaign_counts_and_settles_later(world, ledger, clock):
    """Seed 002: phase 2 ran to 2023-09-30, its settlement on the 18th of October."""
    below, reaching = world.card(1), world.card(2)
    world.charge(below, 10_000, jst(date(2022, 10, 5)))
    world.charge(reaching, 15_000, jst(date(2022, 10, 5)))
    clock.set(date(2023, 5, 1))
    with pytest.raises(CannotExtend):
        world.campaigns.extend("niimi", MYNA.campaign_id, date(2023, 5, 30))
    extended = world.campaigns.extend("niimi", MYNA.campaign_id, date(2023, 9, 30))
    assert extended.settles_on == date(2023, 10, 18)
    world.charge(reaching, 5_000, jst(date(2023, 8, 1)))

    assert world.run(SETTLES).granted == 0  # no settlement at the old end
    assert world.run(date(2023, 9, 18)).points == 5000  # reached in August
    assert world.run(date(2023, 10, 18)).points == 2500
    assert [campaign_points(world, c) for c in (below, reaching)] == [2500, 5000]
    with pytest.raises(CannotExtend):
        world.campaigns.extend("niimi", MYNA.campaign_id, date(2023, 12, 31))  # settled already


# -- what the job reads of a card ---------------------------------------------------------------


def test_a_card_with_a_long_history_costs_one_small_query_of_its_campaign_months(world, ledger, clock):
    """The card's charges of the campaign's months come from its card-month briefs (one
    item a month, appended in each charge's transaction), not its whole TXN history: two
    years of charges before the campaign and many during it are one query of at most as
    many items as the campaign has months."""
    card = world.card(1)
    day = date(2020, 10, 1)
    while day < MYNA.starts_on:  # two years of charges before the campaign
        world.charge(card, 1_000, jst(day))
        day += timedelta(days=7)
    for n in range(30):  # many small charges in October: 7,500 yen in all, below the threshold
        world.charge(card, 250, jst(date(2022, 10, 4)) + timedelta(minutes=n))
    world.charge(card, 12_500, jst(date(2022, 11, 2)))  # the threshold reached in November

    sent: list[tuple[str, dict]] = []
    answers: list[dict] = []
    events = ledger.store.connection.client.meta.events
    events.register("provide-client-params.dynamodb", lambda model, params, **_: sent.append((model.name, params)),
                    unique_id="test-card-reads")
    events.register("after-call.dynamodb", lambda parsed, **_: answers.append(parsed), unique_id="test-card-answers")
    try:
        report = world.run(date(2022, 12, 18))
    finally:
        events.unregister("provide-client-params.dynamodb", unique_id="test-card-reads")
        events.unregister("after-call.dynamodb", unique_id="test-card-answers")
    calls = [(op, params, parsed) for (op, params), parsed in zip(sent, answers, strict=True)]
    assert (report.granted, report.points) == (1, 5000)  # as from the whole history
    card_reads = [(p, r) for op, p, r in calls
                  if op == "Query" and p["ExpressionAttributeValues"][":0"]["S"] == terminal_keys.txn_partition(card)]
    assert len(card_reads) == 1
    [(params, parsed)] = card_reads
    assert parsed["Count"] <= len(MYNA.months()) and parsed.get("ScannedCount", parsed["Count"]) <= len(MYNA.months())
    assert not any(terminal_keys.TXN in str(v) for v in params["ExpressionAttributeValues"].values())


def test_charges_recorded_before_the_briefs_are_counted_once_the_backfill_ran(world, ledger):
    """`brief_month` (the deploy's backfill, python -m chalicelib.terminals.briefs) writes a
    card-month's brief from its TXN items where the brief lacks charges: the grants are those
    the whole history gives; a second run writes nothing."""
    from chalicelib.terminals.store import CardMonthItem

    card, other = world.card(1), world.card(2)
    world.charge(card, 12_000, jst(date(2022, 10, 5)))
    world.charge(other, 7_999, jst(date(2022, 10, 6)))
    # As recorded before the briefs existed: no brief of October at all.
    for idm in (card, other):
        CardMonthItem(*terminal_keys.card_month(idm, "2022-10")).delete()
    world.charge(card, 8_000, jst(date(2022, 10, 20)))  # recorded since: October's brief holds only this
    assert world.terminals.brief_month("niimi", "2022-10") == 2
    assert world.terminals.brief_month("niimi", "2022-10") == 0
    report = world.run(date(2022, 11, 18))
    assert (report.granted, report.points) == (1, 5000)
    assert world.run(SETTLES).points == 1999  # floor(7,999 × 25 %)
