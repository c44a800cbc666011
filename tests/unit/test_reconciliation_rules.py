"""Reconciliation's rules, pure: the settlement file's rows, a line's identity, what
makes it match, the months a file covers and the day a waiting month is granted."""

from __future__ import annotations

from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from chalicelib.imports.domain import Kind, parse
from chalicelib.imports.errors import FileRefused
from chalicelib.ledger.business_days import BusinessCalendar
from chalicelib.reconciliation import domain
from chalicelib.reconciliation.domain import SettlementLine

JST = ZoneInfo("Asia/Tokyo")
NUMBER, IDM = "JW010000000000001", "0c00000000000001"


def rows(text: str):
    return parse(Kind.EMONEY_SETTLEMENTS, text.encode(), time_zone=JST).rows


def test_a_settlement_row_takes_japanese_headers_full_width_digits_and_local_times():
    wide = NUMBER.translate({c: c + 0xFEE0 for c in range(0x21, 0x7F)})  # ＪＷ０１…, as Excel may keep it
    (row,) = rows(f"カード番号,取引通番,金額,利用日時,端末ID\n{wide},１２,\"1,000\",2022/10/31 23:59:59,T-STORE\n")
    assert row.record == SettlementLine(NUMBER, None, 12, 1000, datetime(2022, 10, 31, 14, 59, 59, tzinfo=timezone.utc),
                                        "T-STORE")
    assert row.record.month("Asia/Tokyo") == "2022-10"  # 23:59:59 JST on the 31st is October
    (by_idm,) = rows(f"idm,card_seq,amount,paid_at,terminal_id\n{IDM.upper()},0,500,2022-11-01T00:00:00+09:00,T-1\n")
    assert (by_idm.record.idm, by_idm.record.card_number, by_idm.record.card_seq) == (IDM, None, 0)


@pytest.mark.parametrize(("cells", "problem"), [
    (",,1,100,2022-10-01 10:00,T-1", "the card number or the IDm is needed"),
    ("JW1,,1,100,2022-10-01 10:00,T-1", "the card number must be JW"),
    (f",{IDM}x,1,100,2022-10-01 10:00,T-1", "the IDm must be 16 hexadecimal digits"),
    (f"{NUMBER},,65536,100,2022-10-01 10:00,T-1", "at most 65,535"),
    (f"{NUMBER},,-1,100,2022-10-01 10:00,T-1", "at least 0"),
    (f"{NUMBER},,1,0,2022-10-01 10:00,T-1", "above zero"),
    (f"{NUMBER},,1,10000000,2022-10-01 10:00,T-1", "at most 1,000,000"),
    (f"{NUMBER},,1,100,yesterday,T-1", "not a date and time"),
    (f"{NUMBER},,1,100,2022-10-01 10:00,=cmd", "the terminal id may hold only"),
])
def test_a_bad_settlement_row_is_refused_with_its_reason(cells, problem):
    (row,) = rows(f"card_number,idm,card_seq,amount,paid_at,terminal_id\n{cells}\n")
    assert row.record is None and problem in row.problem


def test_a_settlement_file_without_its_required_columns_is_refused_whole():
    with pytest.raises(FileRefused, match="missing column"):
        rows("card_number,amount,paid_at,terminal_id\nJW010000000000001,1,2022-10-01,T-1\n")


def test_a_lines_id_is_stable_and_names_every_field():
    line = SettlementLine(NUMBER, None, 3, 1000, datetime(2022, 10, 1, 1, tzinfo=timezone.utc), "T-1")
    assert line.line_id("niimi") == line.line_id("niimi") != line.line_id("okayama")
    for other in (SettlementLine(NUMBER, None, 4, 1000, line.at, "T-1"),
                  SettlementLine(NUMBER, None, 3, 1001, line.at, "T-1"),
                  SettlementLine(NUMBER, None, 3, 1000, line.at, "T-2")):
        assert other.line_id("niimi") != line.line_id("niimi")
    assert domain.mismatch(line, 1000, "T-1") is None
    assert domain.mismatch(line, 999, "T-1") == domain.AMOUNT_DIFFERS.format(amount=999)
    assert domain.mismatch(line, 1000, "T-9") == domain.TERMINAL_DIFFERS.format(terminal="T-9")


def test_a_file_covers_its_lines_months_and_the_month_it_is_named_after():
    at = datetime(2022, 10, 31, 15, 0, tzinfo=timezone.utc)  # 1 November, 00:00 JST
    line = SettlementLine(NUMBER, None, 1, 1, at, "T-1")
    assert domain.months_covered([line], "Asia/Tokyo") == ["2022-11"]
    assert domain.months_covered([line], "Asia/Tokyo", "niimi/emoney-settlements/2022-10.csv") == [
        "2022-10", "2022-11"]
    assert domain.months_covered([], "Asia/Tokyo", "niimi/emoney-settlements/2022-10-acquirer.csv") == ["2022-10"]
    assert domain.months_covered([], "Asia/Tokyo", "niimi/emoney-settlements/october.csv") == []


@pytest.mark.parametrize(("received", "granted"), [
    (None, None),  # not yet: the month waits
    (date(2022, 11, 10), date(2022, 11, 30)),  # before its rebate day: the rebate day
    (date(2022, 11, 29), date(2022, 11, 30)),  # the day before: still the rebate day
    (date(2022, 11, 30), date(2022, 12, 1)),  # on the rebate day (after the 00:10 run): the next business day
    (date(2022, 12, 2), date(2022, 12, 5)),  # a Friday: the Monday
    (date(2022, 12, 28), date(2023, 1, 4)),  # the year-end closure: the first business day of January
])
def test_a_waiting_month_is_granted_the_first_business_day_after_its_file(received, granted):
    assert domain.rebate_day(BusinessCalendar(), 2022, 10, received) == granted
