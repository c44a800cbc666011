"""Charge-reward campaign arithmetic (§6.5), pure: what a card earns, when it is due,
and which days the job reads which months. The campaign is the MyNumber Point charge
campaign on ICOCA (seeds 001/002): 25 % of charges up to 5,000 pt, the full 5,000 pt on
the 18th of the month after the month 20,000 yen is reached, point charges and
gas-station charges not counted."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

import pytest

from chalicelib.campaigns import keys
from chalicelib.campaigns.domain import Award, Campaign, Charge, award, closing_day, months_from, sweeps
from chalicelib.terminals import keys as terminal_keys

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


def charge(day: date, amount: int, kind: str = "cash", seq: int = 1, at: time = time(12, 0)) -> Charge:
    return Charge(datetime.combine(day, at, JST), day, seq, amount, kind)


def test_reaching_the_threshold_earns_the_cap_on_the_18th_of_the_next_month():
    charges = [charge(date(2022, 10, 5), 12_000), charge(date(2022, 10, 31), 8_000, seq=2)]
    assert award(MYNA, ENROLLED, charges) == Award(5000, date(2022, 11, 18), 20_000, date(2022, 10, 31))


def test_the_month_is_the_one_of_the_charge_that_reaches_the_threshold():
    charges = [charge(date(2022, 10, 5), 19_999), charge(date(2022, 11, 1), 1, seq=2), charge(date(2022, 12, 1), 9000)]
    assert award(MYNA, ENROLLED, charges) == Award(5000, date(2022, 12, 18), 20_000, date(2022, 11, 1))


def test_charges_count_in_the_order_they_were_made_not_as_listed():
    late_first = [charge(date(2022, 12, 2), 10_000, seq=9), charge(date(2022, 11, 2), 10_000, seq=8)]
    assert award(MYNA, ENROLLED, late_first).reached_on == date(2022, 12, 2)


def test_a_threshold_reached_in_december_is_granted_in_january():
    assert award(MYNA, ENROLLED, [charge(date(2022, 12, 31), 20_000)]).due_on == date(2023, 1, 18)


def test_below_the_threshold_a_quarter_rounded_down_is_granted_at_settlement():
    assert MYNA.settles_on == SETTLES
    assert award(MYNA, ENROLLED, [charge(date(2022, 10, 5), 19_999)]) == Award(4999, SETTLES, 19_999)
    assert award(MYNA, ENROLLED, [charge(date(2022, 10, 5), 7), charge(date(2023, 5, 31), 6, seq=2)]) == Award(
        3, SETTLES, 13)


def test_nothing_earned_is_no_award():
    assert award(MYNA, ENROLLED, []) is None
    assert award(MYNA, ENROLLED, [charge(date(2022, 10, 5), 3)]) is None  # floor(0.75) = 0


def test_point_and_gas_station_charges_are_not_counted():
    charges = [charge(date(2022, 10, 5), 15_000), charge(date(2022, 10, 6), 10_000, "gas-station", 2),
               charge(date(2022, 10, 7), 10_000, "point-charge", 3), charge(date(2022, 10, 8), 100, "quick-charge", 4)]
    assert award(MYNA, ENROLLED, charges) == Award(3775, SETTLES, 15_100)


def test_only_charges_from_the_enrolment_day_to_the_campaign_end_count():
    charges = [
        charge(date(2022, 10, 2), 10_000),  # the day before enrolment
        charge(ENROLLED, 1_000, seq=2),  # the enrolment day counts (お申し込み日以降)
        charge(date(2023, 5, 31), 2_000, seq=3),  # the last day counts
        charge(date(2023, 6, 1), 30_000, seq=4),  # after the end
    ]
    assert award(MYNA, ENROLLED, charges) == Award(750, SETTLES, 3_000)
    early = replace(MYNA, starts_on=date(2022, 10, 3))
    assert award(early, date(2022, 9, 1), [charge(date(2022, 10, 2), 100), charge(ENROLLED, 100, seq=2)]).counted == 100


def test_the_cap_holds_when_the_threshold_is_above_cap_over_rate():
    generous = replace(MYNA, rate_bps=5000, threshold=30_000)
    assert award(generous, ENROLLED, [charge(date(2022, 10, 5), 12_000)]).points == 5000
    assert award(generous, ENROLLED, [charge(date(2022, 10, 5), 9_999)]).points == 4999


def test_a_grant_day_the_month_lacks_is_its_last_day():
    end_of_month = replace(MYNA, grant_day=31)
    assert end_of_month.reward_day("2023-01") == date(2023, 2, 28)
    assert end_of_month.reward_day("2024-01") == date(2024, 2, 29)
    assert end_of_month.reward_day("2023-02") == date(2023, 3, 31)


def test_the_grant_day_is_kept_when_it_is_not_a_business_day():
    assert MYNA.reward_day("2023-05") == date(2023, 6, 18)  # a Sunday: "on the 18th" (seeds 001/002)


def test_months_from_start_to_end():
    assert months_from("2022-11", "2023-02") == ["2022-11", "2022-12", "2023-01", "2023-02"]
    assert len(MYNA.months()) == 17
    assert months_from("2023-02", "2022-11") == []


def test_the_job_reads_a_month_on_its_reward_day_when_it_closes_and_every_month_at_settlement():
    assert closing_day("2022-10", 31) == date(2022, 12, 2)  # a charge of 10-31 may be recorded until 12-01
    found = {s.day: s.months for s in sweeps(MYNA, date(2022, 11, 1), date(2022, 12, 31), late_days=31)}
    assert found == {
        date(2022, 11, 1): ("2022-09",),
        date(2022, 11, 18): ("2022-10",),
        date(2022, 12, 2): ("2022-10",),
        date(2022, 12, 18): ("2022-11",),
    }
    last = sweeps(MYNA, date(2023, 6, 1), date(2023, 12, 31), late_days=31)
    assert [(s.day, len(s.months)) for s in last] == [(date(2023, 6, 1), 1), (date(2023, 6, 18), 17),
                                                      (date(2023, 7, 2), 1)]
    assert (last[0].months, last[2].months) == (("2023-04",), ("2023-05",))
    assert sweeps(MYNA, date(2023, 7, 3), date(2030, 1, 1), late_days=31) == []


def test_a_campaign_states_every_problem():
    assert MYNA.problems() == []
    bad = replace(MYNA, campaign_id="My#Campaign", name=" ", rate_bps=10_001, cap=0, threshold=True, grant_day=32,
                  ends_on=date(2021, 12, 31), validity_months=0)
    assert len(bad.problems()) == 7


def test_the_terminals_keys_read_the_partitions_they_write_for_the_campaigns():
    idm = "0a00000000000001"
    month_key, card_key = terminal_keys.charges("niimi", "2022-10", idm)
    assert month_key in terminal_keys.charges_shards("niimi", "2022-10")
    assert terminal_keys.charges_idm(card_key) == idm
    assert terminal_keys.txn_partition(idm) == terminal_keys.txn(idm, 7)[0]
    assert terminal_keys.txn_seq(terminal_keys.txn(idm, 7)[1]) == 7


def test_a_grant_mark_sits_beside_its_enrolment():
    idm = "0a00000000000001"
    enrolment, mark = keys.enrolment("niimi", "mynapoint-2", idm), keys.granted("niimi", "mynapoint-2", idm)
    assert enrolment[0] == mark[0] and enrolment[0] in keys.enrolment_shards("niimi", "mynapoint-2")
    assert keys.enrolled_idm(enrolment[1]) == keys.granted_idm(mark[1]) == idm


@pytest.mark.parametrize("day", [date(2022, 11, 17), date(2022, 11, 18), date(2022, 11, 19)])
def test_an_award_is_due_on_its_day_and_not_before(day):
    due = award(MYNA, ENROLLED, [charge(date(2022, 10, 5), 20_000)]).due_on
    assert (due <= day) == (day >= date(2022, 11, 18))
