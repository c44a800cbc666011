"""The one CSV writer (chalicelib/csv_files.py): text that starts like a formula is
written so a spreadsheet shows it as text; numbers stay numbers, negative ones too."""

from __future__ import annotations

import csv
import io

import pytest

from chalicelib import csv_files
from chalicelib.imports import domain as imports
from chalicelib.reports import domain as reports


def cells(raw: bytes) -> list[list[str]]:
    assert raw.startswith(b"\xef\xbb\xbf") and raw.endswith(b"\r\n")
    return list(csv.reader(io.StringIO(raw.decode("utf-8-sig"), newline="")))


@pytest.mark.parametrize("text", ['=HYPERLINK("http://evil.example/?x","開く")', "+1+1", "-2+3", "@SUM(A1:A2)",
                                  "\t=1", "\r=1", "=", "-", "-500"])
def test_text_that_starts_like_a_formula_is_written_as_text(text):
    assert csv_files.safe_cell(text) == "'" + text
    assert cells(csv_files.to_csv([[text]])) == [["'" + text]]
    assert csv_files.unescape("'" + text) == text  # read back from a result file, fixed and imported again


@pytest.mark.parametrize("text", ["新見精肉店", "M-1", "2023-04", "a=b", " =1", "'quoted", "合計", "", "＝１"])
def test_other_text_is_written_as_it_is(text):
    assert csv_files.safe_cell(text) == text
    assert csv_files.unescape(text) == text


def test_numbers_negative_ones_too_stay_numbers():
    raw = csv_files.to_csv([["対象月", "精算ポイント"], ["2023-04", -500], ["2023-04", 0], ["2023-04", None]])
    assert raw.decode("utf-8-sig").splitlines() == ["対象月,精算ポイント", "2023-04,-500", "2023-04,0", "2023-04,"]


def test_control_characters_never_reach_the_file():
    assert cells(csv_files.to_csv([["a\x00b", "c\x1bd", "e\nf"]])) == [["a\ufffdb", "c\ufffdd", "e\nf"]]


def test_the_settlement_report_writes_a_formula_name_as_text_and_a_negative_net_as_a_number():
    lines = [reports.SettlementLine("M-1", '=HYPERLINK("http://evil.example","請求書")', 300, 0),
             reports.SettlementLine("-M", "+店", 0, 500)]
    rows = cells(reports.settlement_csv("2023-04", lines))
    assert rows[1] == ["2023-04", "M-1", '\'=HYPERLINK("http://evil.example","請求書")', "300", "0", "300"]
    assert rows[2] == ["2023-04", "'-M", "'+店", "0", "500", "-500"]
    assert rows[3] == ["2023-04", "合計", "", "300", "500", "-200"]


def test_every_report_and_the_import_result_file_go_through_the_one_writer(monkeypatch):
    seen = []

    def spy(rows):
        rows = [list(r) for r in rows]
        seen.append(rows)
        return b""

    monkeypatch.setattr(csv_files, "to_csv", spy)
    reports.settlement_csv("2023-04", [])
    reports.outstanding_csv("2023-04-30", {})
    reports.expired_voided_csv("2023-04", {})
    reports.grants_csv("2023-04", {})
    reports.campaigns_csv("2023-04", {"=1+1": 5})
    imports.result_csv(source="=x.csv", kind="cards", tally=imports.Tally(), rejections=[])
    assert len(seen) == 6
    assert ["2023-04", "=1+1", 5] in seen[4] and ["file", "=x.csv"] in seen[5]
