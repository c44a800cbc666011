"""The business calendar of §9: not a weekend, not a Japanese national holiday
(substitute holidays included), not 29 December – 3 January, not an issuer closure day."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta
from functools import lru_cache

from .domain import last_day_of_month


@lru_cache(maxsize=64)
def _national_holidays(year: int) -> frozenset[date]:
    import holidays  # imported on first use: it is slow to import and cold starts matter

    return frozenset(holidays.country_holidays("JP", years=year))


def _year_end_closure(day: date) -> bool:
    return (day.month == 12 and day.day >= 29) or (day.month == 1 and day.day <= 3)


class BusinessCalendar:
    def __init__(self, closures: Iterable[date] = ()) -> None:
        self.closures = frozenset(closures)

    def is_business_day(self, day: date) -> bool:
        return not (
            day.weekday() >= 5
            or _year_end_closure(day)
            or day in self.closures
            or day in _national_holidays(day.year)
        )

    def on_or_before(self, day: date) -> date:
        while not self.is_business_day(day):
            day -= timedelta(days=1)
        return day

    def last_business_day(self, year: int, month: int) -> date:
        return self.on_or_before(last_day_of_month(year, month))

    def day_or_business_day_before(self, year: int, month: int, day: int) -> date:
        """Day `day` of the month (the month's last day if it is shorter), or the
        business day before it."""
        last = last_day_of_month(year, month)
        return self.on_or_before(last.replace(day=min(day, last.day)))


def next_month(year: int, month: int) -> tuple[int, int]:
    return (year + 1, 1) if month == 12 else (year, month + 1)


def rebate_grant_date(cal: BusinessCalendar, year: int, month: int) -> date:
    """The rebate for payments in (year, month) is granted on the last business day
    of the following month."""
    return cal.last_business_day(*next_month(year, month))
