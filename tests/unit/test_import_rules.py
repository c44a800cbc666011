"""The import files' rules, pure: headers, rows, fields, the result file and S3 keys."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from chalicelib.imports import keys
from chalicelib.imports.domain import (
    Kind,
    Outcome,
    Rejection,
    Tally,
    TerminalRow,
    parse,
    parse_date,
    parse_instant,
    result_csv,
)
from chalicelib.imports.errors import FileRefused, UnknownKind

JST = ZoneInfo("Asia/Tokyo")


def rows(kind: Kind, text: str):
    return parse(kind, text.encode(), time_zone=JST).rows


@pytest.mark.parametrize("header", [
    "card_number,idm,birth_date,points,granted_on",
    "Card Number,IDM,Birth Date,Points,Granted On",
    "カード番号,ＩＤｍ,生年月日,付与ポイント,付与日",
    "\ufeffcard_number,idm,birth_date,points,granted_on",
])
def test_headers_are_accepted_in_english_or_japanese(header):
    (row,) = rows(Kind.CARDS, header + "\nJW000000000000001,0000000000000001,1980-04-01,5000,2022-10-24\n")
    assert row.record.card_number == "JW000000000000001" and row.record.points == 5000


def test_a_bom_is_not_part_of_the_first_column():
    with_bom = parse(Kind.MERCHANTS, "\ufeffmerchant_id,name,area,category\nm1,店,町,食\n".encode(), time_zone=JST)
    assert with_bom.header[0] == "merchant_id" and with_bom.rows[0].record.merchant_id == "m1"


def test_rows_are_numbered_as_a_spreadsheet_shows_them_even_with_a_multi_line_key():
    key = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA\n-----END PUBLIC KEY-----"
    buffer = io.StringIO()
    csv.writer(buffer).writerows([("terminal_id", "mode", "merchant_id", "public_key"),
                                  ("t1", "store", "m1", key), ("t2", "bogus", "m1", key)])
    first, second = rows(Kind.TERMINALS, buffer.getvalue())
    assert isinstance(first.record, TerminalRow) and first.record.public_key == key + "\n"
    assert (second.number, second.problem) == (3, "the mode must be store, charger or event (店舗, チャージ, イベント)")


def test_blank_rows_are_skipped_not_rejected():
    parsed = rows(Kind.MERCHANTS, "merchant_id,name,area,category\n\nm1,店,町,食\n,,,\n")
    assert [(r.number, r.blank) for r in parsed] == [(2, True), (3, False), (4, True)]


@pytest.mark.parametrize(("header", "message"), [
    ("merchant_id,name,area", "missing column(s) category"),
    ("merchant_id,name,area,category,colour", "unknown column(s) colour"),
    ("merchant_id,name,area,category,加盟店名", "column(s) name appear twice"),
])
def test_a_wrong_header_refuses_the_file(header, message):
    with pytest.raises(FileRefused, match=message.replace("(", r"\(").replace(")", r"\)")):
        rows(Kind.MERCHANTS, header + "\n")


def test_a_file_that_is_not_utf8_is_refused():
    with pytest.raises(FileRefused, match="not UTF-8"):
        parse(Kind.MERCHANTS, "加盟店ID,加盟店名,地区,業種\n".encode("cp932"), time_zone=JST)


@pytest.mark.parametrize(("text", "day"), [
    ("2022-10-24", date(2022, 10, 24)), ("2022/10/24", date(2022, 10, 24)), ("2022/1/5", date(2022, 1, 5)),
    ("2022年10月24日", date(2022, 10, 24)), ("２０２２－１０－２４", date(2022, 10, 24)),
    ("2023-02-29", None), ("24/10/2022", None), ("", None), ("2022-10-24T10:00", None),
])
def test_dates(text, day):
    assert parse_date(text) == day


def test_instants_without_an_offset_are_the_issuers_local_time():
    assert parse_instant("2026-05-03 09:00", JST, end_of_day=False) == datetime(2026, 5, 3, 0, 0, tzinfo=timezone.utc)
    assert parse_instant("2026-05-03T09:00:00+00:00", JST, end_of_day=False) == datetime(
        2026, 5, 3, 9, 0, tzinfo=timezone.utc)
    assert parse_instant("2026-05-03", JST, end_of_day=True) == datetime(2026, 5, 3, 15, 0, tzinfo=timezone.utc)
    assert parse_instant("2026-05-03 25:00", JST, end_of_day=False) is None


@pytest.mark.parametrize(("points", "problem"), [
    ("5000", None), ("5,000", None), ("５０００", None), ("0", "the initial points must be above zero"),
    ("-5", "the initial points must be above zero"), ("50.5", "the initial points must be a whole number, not '50.5'"),
    ("1000001", "the initial points must be at most 1,000,000"), ("", "the initial points is empty"),
])
def test_points_are_whole_numbers_above_zero(points, problem):
    (row,) = rows(Kind.CARDS, "card_number,idm,birth_date,points,granted_on\n"
                              f'JW000000000000001,0000000000000001,1980-04-01,"{points}",2022-10-24\n')
    assert row.problem == problem


def test_repeats_within_a_file_refuse_the_later_rows():
    parsed = rows(Kind.CARDS, "card_number,idm,birth_date,points,granted_on\n"
                              "JW000000000000001,0000000000000001,1980-04-01,5000,2022-10-24\n"
                              "JW000000000000002,0000000000000001,1980-04-01,5000,2022-10-24\n"
                              "JW000000000000001,0000000000000003,1980-04-01,5000,2022-10-24\n")
    assert [r.problem for r in parsed] == [None, "the same IDm is already on row 2 of this file",
                                           "the same card number is already on row 2 of this file"]


def test_a_birth_date_after_the_grant_is_refused():
    (row,) = rows(Kind.CARDS, "card_number,idm,birth_date,points,granted_on\n"
                              "JW000000000000001,0000000000000001,2023-01-01,5000,2022-10-24\n")
    assert row.problem == "the birth date is after the grant date"


def test_the_result_file_opens_in_excel_and_lists_rejected_rows_under_the_files_header():
    tally = Tally().add(Outcome.IMPORTED, 5000).add(Outcome.REJECTED).add(Outcome.BLANK)
    body = result_csv(source="niimi/cards/a.csv", kind="cards", tally=tally, header=("カード番号", "IDm"),
                      rejections=[Rejection(3, "the IDm must be 16 hexadecimal digits (0-9, a-f)", ("JW1", "xx"))])
    assert body.startswith("\ufeff".encode()) and b"\r\n" in body
    lines = list(csv.reader(io.StringIO(body.decode("utf-8-sig"), newline="")))
    assert lines[:3] == [["file", "niimi/cards/a.csv"], ["kind", "cards"], ["status", "complete"]]
    assert ["rows", "2"] in lines and ["points granted", "5000"] in lines
    assert lines[-2:] == [["row", "reason", "カード番号", "IDm"],
                          ["3", "the IDm must be 16 hexadecimal digits (0-9, a-f)", "JW1", "xx"]]


def test_s3_keys_name_the_issuer_and_the_kind():
    assert keys.source("niimi/cards/2022-10.csv") == ("niimi", Kind.CARDS)
    assert keys.source("niimi/admin_grants/x/y.CSV") == ("niimi", Kind.ADMIN_GRANTS)
    assert keys.result("niimi/cards/2022-10.csv") == "import-results/niimi/cards/2022-10.csv.result.csv"
    assert keys.continuation("ab" * 32, 7_000).endswith("/0007000.csv")  # the bucket notifies .csv objects
    assert keys.is_continuation(keys.continuation("ab", 1)) and not keys.is_continuation("niimi/cards/a.csv")
    with pytest.raises(UnknownKind):
        keys.source("niimi/shops/a.csv")
    with pytest.raises(FileRefused):
        keys.source("cards.csv")
