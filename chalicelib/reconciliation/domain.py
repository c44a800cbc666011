"""Reconciliation rules, pure: a settlement line, what makes it match a record, when a
month counts as received, the day its rebate is granted, and the report. No AWS, no I/O.

A line of the acquirer's settlement file names one card transaction: the card (its
printed number or its IDm), the card's own transaction sequence number, the amount, the
time and the terminal. It is looked up by card and sequence number, so it can match at
most one record; the record keeps the id of the line that matched it, so a record is
matched by at most one line (the same line again is "already matched", another one is
unmatched). The amount and the terminal must agree with the record; the time is shown,
not compared (a terminal's clock and the acquirer's may differ by minutes, and the
sequence number already names the transaction).

A file covers the months (issuer's time zone) of its lines' times, and the month its
name starts with (`<issuer>/emoney-settlements/2022-10….csv` covers October 2022 even
with no lines, so a month without payments can be closed with an empty file). When its
import has gone through every row, each of those months is *received* on that day (the
first file to cover a month counts; later files still match, as late matches). The
rebate for month M is granted on max(the rebate day of M, the first business day after
M was received): a file that came before the rebate day changes nothing, one that came
later is granted the next business day after it came. A month none of whose records
awaits a line (no payments, or every one matched or cancelled) needs no file.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from ..ledger.business_days import BusinessCalendar, rebate_grant_date

# Why a line is unmatched (the reconciliation report and the import's result file say so).
NO_CARD = "カードが登録されていません（カード番号・IDm）"
CARD_DISAGREES = "カード番号とIDmが同じカードを指していません"
NO_RECORD = "このカード・取引通番の端末の記録がありません"
TERMINAL_DIFFERS = "端末IDが端末の記録（{terminal}）と違います"
AMOUNT_DIFFERS = "金額が端末の記録（{amount:,}円）と違います"
OTHER_LINE = "この端末の記録は別の精算行と照合済みです"
AWAITING_RECORD = "精算ファイルに行がありません"


@dataclass(frozen=True)
class SettlementLine:
    """One line of the acquirer's settlement file, as validated by the import."""

    card_number: str | None
    idm: str | None
    card_seq: int
    amount: int
    at: datetime  # UTC
    terminal_id: str

    def line_id(self, issuer_id: str) -> str:
        """What makes it this line: the same line in a file imported again (or in a later
        file covering the same days) has the same id, so it is matched once."""
        fields = (issuer_id, self.card_number or "", self.idm or "", str(self.card_seq), str(self.amount),
                  self.at.isoformat(), self.terminal_id)
        return hashlib.sha256("\n".join(fields).encode()).hexdigest()[:32]

    def month(self, time_zone: str) -> str:
        return self.at.astimezone(ZoneInfo(time_zone)).strftime("%Y-%m")


def mismatch(line: SettlementLine, amount: int, terminal_id: str) -> str | None:
    """Why a line does not match the record with its card and sequence number (None: it does)."""
    if line.terminal_id != terminal_id:
        return TERMINAL_DIFFERS.format(terminal=terminal_id)
    if line.amount != amount:
        return AMOUNT_DIFFERS.format(amount=amount)
    return None


_NAMED_MONTH = re.compile(r"([0-9]{4})-(0[1-9]|1[0-2])")


def months_covered(lines: Iterable[SettlementLine], time_zone: str, file_name: str = "") -> list[str]:
    """The months a settlement file covers: its lines' months and the month its name starts with."""
    months = {line.month(time_zone) for line in lines}
    named = _NAMED_MONTH.match(file_name.rsplit("/", 1)[-1])
    if named:
        months.add(named.group(0))
    return sorted(months)


def next_business_day(calendar: BusinessCalendar, day: date) -> date:
    """The first business day after `day`."""
    day += timedelta(days=1)
    while not calendar.is_business_day(day):
        day += timedelta(days=1)
    return day


def rebate_day(calendar: BusinessCalendar, year: int, month: int, received_on: date | None) -> date | None:
    """The day month (year, month)'s rebate is granted under reconciliation: its rebate
    day, or the first business day after its file arrived if that is later; None while
    the file has not arrived."""
    if received_on is None:
        return None
    return max(rebate_grant_date(calendar, year, month), next_business_day(calendar, received_on))


# --- the report -------------------------------------------------------------------------


@dataclass(frozen=True)
class UnmatchedRecord:
    """A terminal's e-money record no settlement line has matched yet."""

    month: str
    idm: str
    card_seq: int
    amount: int
    at: datetime
    terminal_id: str


@dataclass(frozen=True)
class UnmatchedLine:
    """A settlement line that matched no record, and why."""

    month: str
    line_id: str
    card_number: str | None
    idm: str | None
    card_seq: int
    amount: int
    at: datetime
    terminal_id: str
    reason: str


HEADER = ("対象月", "区分", "カード番号", "IDm", "取引通番", "金額", "日時", "端末ID", "理由")
RECORD_KIND = "端末の記録（精算行なし）"
LINE_KIND = "精算行（端末の記録と不一致）"


def report_rows(
    month: str, records: Sequence[UnmatchedRecord], lines: Sequence[UnmatchedLine], received_on: date | None,
    time_zone: str,
) -> list[list[object]]:
    zone = ZoneInfo(time_zone)

    def local(at: datetime) -> str:
        return at.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")

    rows: list[list[object]] = [
        [month, RECORD_KIND, "", r.idm, r.card_seq, r.amount, local(r.at), r.terminal_id, AWAITING_RECORD]
        for r in sorted(records, key=lambda r: (r.at, r.idm, r.card_seq))
    ]
    rows += [
        [month, LINE_KIND, x.card_number or "", x.idm or "", x.card_seq, x.amount, local(x.at), x.terminal_id,
         x.reason]
        for x in sorted(lines, key=lambda x: (x.at, x.line_id))
    ]
    rows.append([month, "合計", "", "", "", sum(r.amount for r in records) + sum(x.amount for x in lines), "", "",
                 f"端末の記録 {len(records)}件、精算行 {len(lines)}件"])
    rows.append([month, "精算ファイル受領日", "", "", "", "", received_on.isoformat() if received_on else "未受領",
                 "", ""])
    return rows

