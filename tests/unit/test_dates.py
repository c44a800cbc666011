"""Every date of SPEC §5.2, §9 and §11, and the calendar rules around them."""

from datetime import date

import pytest

from chalicelib.ledger.business_days import BusinessCalendar, next_month, rebate_grant_date
from chalicelib.ledger.domain import dormancy_deadline, expiry_date, is_dormant


@pytest.mark.parametrize(
    "granted, expires",
    [
        (date(2022, 10, 24), date(2023, 4, 23)),  # seed 000 Q7
        (date(2023, 8, 31), date(2024, 2, 29)),  # no 31 Feb: the month's last day (leap year)
        (date(2023, 3, 31), date(2023, 9, 30)),  # no 31 Sep
        (date(2022, 11, 30), date(2023, 5, 29)),  # §11 rebate lot
        (date(2023, 8, 30), date(2024, 2, 29)),  # 30 Feb does not exist either
        (date(2024, 8, 29), date(2025, 2, 28)),  # no 29 Feb in 2025
        (date(2023, 7, 1), date(2023, 12, 31)),  # first of month: last day of the month before
        (date(2023, 9, 15), date(2024, 3, 14)),  # across a year end
    ],
)
def test_six_month_expiry_follows_civil_code_143(granted, expires):
    assert expiry_date(granted, 6) == expires


def test_expiry_for_other_validities():
    assert expiry_date(date(2023, 1, 31), 1) == date(2023, 2, 28)
    assert expiry_date(date(2023, 1, 15), 12) == date(2024, 1, 14)


@pytest.mark.parametrize(
    "month, grant_day",
    [
        ((2022, 10), date(2022, 11, 30)),  # Wed
        ((2023, 3), date(2023, 4, 28)),  # Fri: the 30th is a Sunday
        ((2023, 11), date(2023, 12, 28)),  # Thu: 29-31 Dec are closed
        ((2026, 4), date(2026, 5, 29)),  # Fri
    ],
)
def test_rebate_grant_days_of_section_9(month, grant_day):
    assert rebate_grant_date(BusinessCalendar(), *month) == grant_day


@pytest.mark.parametrize(
    "day, business",
    [
        (date(2023, 4, 28), True),
        (date(2023, 4, 29), False),  # Showa Day, a Saturday too
        (date(2023, 5, 3), False),  # Constitution Day
        (date(2023, 1, 2), False),  # New Year closure
        (date(2023, 1, 3), False),
        (date(2023, 1, 4), True),
        (date(2022, 12, 28), True),
        (date(2022, 12, 29), False),
        (date(2023, 1, 9), False),  # Coming of Age Day (second Monday)
        (date(2024, 2, 12), False),  # substitute holiday for 11 Feb, a Sunday
        (date(2023, 4, 30), False),  # Sunday
        (date(2026, 9, 22), False),  # citizens' holiday between two holidays
    ],
)
def test_business_days(day, business):
    assert BusinessCalendar().is_business_day(day) is business


def test_issuer_closure_days_are_not_business_days():
    cal = BusinessCalendar(closures=[date(2022, 11, 30)])
    assert not cal.is_business_day(date(2022, 11, 30))
    assert rebate_grant_date(cal, 2022, 10) == date(2022, 11, 29)


def test_day_n_or_the_business_day_before():
    cal = BusinessCalendar()
    assert cal.day_or_business_day_before(2023, 6, 18) == date(2023, 6, 16)  # Sunday → Friday
    assert cal.day_or_business_day_before(2023, 7, 18) == date(2023, 7, 18)  # Tuesday
    assert cal.day_or_business_day_before(2023, 9, 18) == date(2023, 9, 15)  # Respect for the Aged Day
    assert cal.day_or_business_day_before(2023, 2, 31) == date(2023, 2, 28)  # short month: its last day


def test_last_business_day_and_next_month():
    cal = BusinessCalendar()
    assert cal.last_business_day(2023, 12) == date(2023, 12, 28)
    assert next_month(2023, 12) == (2024, 1)
    assert next_month(2023, 1) == (2023, 2)


def test_dormancy_is_60_months_from_the_day_after_the_last_grant_or_spend():
    last = date(2022, 10, 24)
    assert dormancy_deadline(last, 60) == date(2027, 10, 24)
    assert not is_dormant(last, 60, date(2027, 10, 24))
    assert is_dormant(last, 60, date(2027, 10, 25))
    # the day after 31 Aug is 1 Sep; 60 months later the period ends on 31 Aug
    assert dormancy_deadline(date(2023, 8, 31), 60) == date(2028, 8, 31)
