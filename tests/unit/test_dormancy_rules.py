"""Dormancy (§4, seed 000 Q3), pure: the boundary day by the Civil Code counting the
expiry dates use, the properties the dormancy sweep relies on, and its index keys."""

from datetime import date, timedelta

import pytest

from chalicelib.jobs.dormancy import FIRST_RUN_LOOKBACK_DAYS, _first_day
from chalicelib.ledger import keys
from chalicelib.ledger.domain import dormancy_deadline, expiry_date, is_dormant


@pytest.mark.parametrize(
    "last, deadline",
    [
        (date(2022, 10, 24), date(2027, 10, 24)),  # counted from 10-25: ends the day before 2027-10-25
        (date(2022, 12, 31), date(2027, 12, 31)),  # counted from 1 Jan: ends on 31 Dec
        (date(2023, 2, 28), date(2028, 2, 29)),  # counted from 1 Mar: ends the day before 2028-03-01
        (date(2024, 2, 28), date(2029, 2, 28)),  # counted from 29 Feb: no 29 Feb 2029, the month's last day
        (date(2024, 2, 29), date(2029, 2, 28)),  # counted from 1 Mar: ends the day before 2029-03-01
        (date(2023, 1, 31), date(2028, 1, 31)),
    ],
)
def test_the_last_active_day_is_the_end_of_60_months_counted_from_the_day_after(last, deadline):
    assert dormancy_deadline(last, 60) == deadline == expiry_date(last + timedelta(days=1), 60)
    assert not is_dormant(last, 60, deadline)  # the deadline is the last day still active
    assert not is_dormant(last, 60, deadline - timedelta(days=1))
    assert is_dormant(last, 60, deadline + timedelta(days=1))  # dormant from the day after


def test_a_later_activity_never_gives_an_earlier_deadline():
    """The sweep stops at the first activity day not yet dormant; that is only right if
    the deadline grows with the activity day."""
    day, end = date(2019, 1, 1), date(2029, 1, 1)
    previous = dormancy_deadline(day, 60)
    while day < end:
        day += timedelta(days=1)
        deadline = dormancy_deadline(day, 60)
        assert deadline >= previous
        previous = deadline


@pytest.mark.parametrize("months", [60, 1, 13])
def test_a_first_run_starts_at_the_first_activity_day_whose_deadline_is_in_its_look_back(months):
    on = date(2027, 1, 1)
    while on < date(2029, 4, 1):
        start = _first_day(on, months)
        earliest = on - timedelta(days=FIRST_RUN_LOOKBACK_DAYS)
        assert dormancy_deadline(start, months) >= earliest
        assert dormancy_deadline(start - timedelta(days=1), months) < earliest
        on += timedelta(days=3)


def test_dormancy_keys_are_built_and_parsed_in_one_place():
    idm = "0123456789abcdef"
    key = keys.dormancy("niimi", date(2022, 10, 24), idm)
    assert key == f"DORM#niimi#2022-10-24#{keys.shard(idm):02d}"
    assert keys.parse_dormancy(key) == ("niimi", date(2022, 10, 24), keys.shard(idm))
    shards = keys.dormancy_shards("niimi", date(2022, 10, 24))
    assert len(shards) == len(set(shards)) == keys.SHARDS and key in shards
