"""Rebates errors. None reaches a caller of the API: each is a signal the caller acts on."""

from __future__ import annotations


class MonthMoved(Exception):
    """A month's accrual or the card's rebate account changed between the read and the
    write (a late record, another cancel or another run): read them again."""
