"""Charge-reward campaigns (§6.5), pure: no AWS, no I/O, no clock.

A campaign rewards the charges an enrolled card makes from its enrolment date, as the
MyNumber Point campaign on ICOCA does (seeds 001/002):

    counted   charges of a kind not excluded, dated (issuer's time zone) from
              max(enrolment date, campaign start) to the campaign end, inclusive
    reached   the cumulative counted total reaches `threshold` yen: the full `cap` is
              granted on the grant day of the month after the month it was reached
    otherwise floor(total × rate / 10,000), capped, is granted on the grant day of the
              month after the campaign's end month (the settlement day)

A card gets at most one grant per campaign, whichever comes first.

Which day the job reads which month's list of charging cards (`sweeps`): a month M
on its reward day (cards that reached the threshold in M charged in M), every month on
the settlement day, and M once more when no charge of M can still be recorded (a
terminal may send a record up to `late_days` after the charge), so a late record is
granted then rather than lost.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from ..ledger.domain import last_day_of_month

BASIS_POINTS = 10_000
CAMPAIGN_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,39}")  # it is part of key strings and request ids


# --- months --------------------------------------------------------------------------


def month_of(day: date) -> str:
    """A month as the terminals store it: YYYY-MM."""
    return f"{day.year:04d}-{day.month:02d}"


def parse_month(month: str) -> tuple[int, int]:
    year, number = month.split("-")
    return int(year), int(number)


def following_month(month: str) -> str:
    year, number = parse_month(month)
    return f"{year + 1:04d}-01" if number == 12 else f"{year:04d}-{number + 1:02d}"


def months_from(first: str, last: str) -> list[str]:
    months = [first]
    while months[-1] < last:  # YYYY-MM sorts as it compares
        months.append(following_month(months[-1]))
    return [m for m in months if m <= last]


def last_day(month: str) -> date:
    return last_day_of_month(*parse_month(month))


# --- the campaign --------------------------------------------------------------------


@dataclass(frozen=True)
class Campaign:
    issuer: str
    campaign_id: str
    name: str
    rate_bps: int  # 2500 = 25 %
    cap: int  # points
    threshold: int  # yen
    grant_day: int  # day of the month; a shorter month uses its last day
    starts_on: date
    ends_on: date  # inclusive
    excluded_kinds: frozenset[str] = frozenset()  # charge kinds as terminals report them
    validity_months: int | None = None  # of the granted lot; None: the issuer's

    def problems(self) -> list[str]:
        """Every reason the campaign cannot run, in words; empty when it can."""
        found = []
        if not CAMPAIGN_ID.fullmatch(self.campaign_id):
            found.append("the id is 1-40 lowercase letters, digits or hyphens")
        if not self.name.strip():
            found.append("the campaign needs a name")
        if not _positive_int(self.rate_bps) or self.rate_bps > BASIS_POINTS:
            found.append("rate_bps is an integer from 1 to 10000")
        if not _positive_int(self.cap) or not _positive_int(self.threshold):
            found.append("cap and threshold are positive integers")
        if not _positive_int(self.grant_day) or self.grant_day > 31:
            found.append("grant_day is a day of the month, 1 to 31")
        if self.ends_on < self.starts_on:
            found.append("the campaign ends before it starts")
        if self.validity_months is not None and not _positive_int(self.validity_months):
            found.append("validity_months is a positive integer")
        return found

    def months(self) -> list[str]:
        return months_from(month_of(self.starts_on), month_of(self.ends_on))

    def reward_day(self, month: str) -> date:
        """The day points earned in `month` are granted: the grant day of the following
        month. Granted on that date even when it is not a business day (the seeds grant
        "on the 18th"; a job, not a clerk, does it)."""
        end = last_day(following_month(month))
        return end.replace(day=min(self.grant_day, end.day))

    @property
    def settles_on(self) -> date:
        """The settlement day: the reward day of the end month."""
        return self.reward_day(month_of(self.ends_on))

    def counts(self, charge: Charge, enrolled_on: date) -> bool:
        return charge.kind not in self.excluded_kinds and max(self.starts_on, enrolled_on) <= charge.day <= self.ends_on


def _positive_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


@dataclass(frozen=True)
class Charge:
    """A charge recorded by a charging terminal."""

    at: datetime
    day: date  # `at` in the issuer's time zone
    seq: int  # the card's own transaction sequence number
    amount: int  # yen
    kind: str


@dataclass(frozen=True)
class Enrolment:
    idm: str
    enrolled_on: date
    granted: bool = False  # the campaign's one grant to this card is made


@dataclass(frozen=True)
class Award:
    points: int
    due_on: date
    counted: int  # yen counted up to the award
    reached_on: date | None = None  # the day the threshold was reached, if it was


def award(campaign: Campaign, enrolled_on: date, charges: Iterable[Charge]) -> Award | None:
    """What the card earns and when it is due, from every charge it has made; None when
    it earns nothing. Charges count in the order they were made."""
    total = 0
    for charge in sorted((c for c in charges if campaign.counts(c, enrolled_on)), key=lambda c: (c.at, c.seq)):
        total += charge.amount
        if total >= campaign.threshold:
            return Award(campaign.cap, campaign.reward_day(month_of(charge.day)), total, charge.day)
    points = min(campaign.cap, total * campaign.rate_bps // BASIS_POINTS)
    return Award(points, campaign.settles_on, total) if points > 0 else None


# --- when the job reads what -----------------------------------------------------------


@dataclass(frozen=True)
class Sweep:
    day: date
    months: tuple[str, ...]  # the months whose charging cards are read that day


def closing_day(month: str, late_days: int) -> date:
    """The first day on which no more charges of `month` can be recorded."""
    return last_day(month) + timedelta(days=late_days + 1)


def last_sweep_day(campaign: Campaign, late_days: int) -> date:
    return closing_day(month_of(campaign.ends_on), late_days)


def sweeps(campaign: Campaign, since: date, until: date, *, late_days: int) -> list[Sweep]:
    """The days from `since` to `until` (inclusive) on which the job reads charging
    cards, in order, each with its months."""
    by_day: dict[date, set[str]] = {}
    months = campaign.months()
    for month in months:
        by_day.setdefault(campaign.reward_day(month), set()).add(month)
        by_day.setdefault(closing_day(month, late_days), set()).add(month)
    by_day[campaign.settles_on] = set(months)
    return [Sweep(day, tuple(sorted(by_day[day]))) for day in sorted(by_day) if since <= day <= until]
