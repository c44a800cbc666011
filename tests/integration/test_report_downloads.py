"""Monthly reports for download through the admin API and the CLI, on moto S3: the files
the reports schedule writes (Reports.write_month, built as in Lambda by
`chalicelib.services.reports()`) are listed and come back byte for byte, BOM and CRLF
kept; bad months and names are refused; an issuer's path reaches only its reports."""

from __future__ import annotations

import json
from datetime import date

import boto3
import pytest

from chalicelib import services
from chalicelib.ledger.domain import Actor, Source
from chalicelib.reports import keys
from chalicelib.reports.service import REPORTS
from chalicelib.terminals.domain import Merchant
from chalicelib.terminals.store import TerminalStore
from tests.integration.test_admin_cli import creds, gateway, run  # noqa: F401  (fixtures)
from tests.integration.test_operators_api import issue
from tests.operators import ARN, ARN_HEADER, operators, with_identity  # noqa: F401  (fixtures)

pytestmark = pytest.mark.filterwarnings("ignore:IAMAuthorizer is not a supported in local mode")

BOM = "\ufeff".encode()
MONTH = "2023-03"
PATH = "/api/admin/v1/issuers/{issuer}/reports"


class Bucket:
    """The reports bucket the app reads (services.s3(), settings().reports_bucket)."""

    def __init__(self, s3, name: str) -> None:
        self.s3, self.name = s3, name

    def read(self, issuer: str, month: str, report: str) -> bytes:
        return self.s3.get_object(Bucket=self.name, Key=keys.report_object(issuer, month, report))["Body"].read()

    def size(self, issuer: str, month: str, report: str) -> int:
        return self.s3.head_object(Bucket=self.name, Key=keys.report_object(issuer, month, report))["ContentLength"]


@pytest.fixture
def bucket(store, monkeypatch) -> Bucket:
    """Services wired as in Lambda, on moto: the app's table, its S3 client, its bucket."""
    s3 = boto3.client("s3", region_name="ap-northeast-1")
    name = services.settings().reports_bucket
    s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": "ap-northeast-1"})
    monkeypatch.setattr(services, "s3", lambda: s3)
    monkeypatch.setattr(services, "table", lambda: store.table)
    return Bucket(s3, name)


@pytest.fixture
def written(bucket, ledger, clock, terminal_service) -> Bucket:
    """March 2023 written for both issuers: a payment at a Niimi store, grants on each."""
    TerminalStore(ledger.store.table).put_merchant(Merchant("M-1", "niimi", "新見精肉店", "新見", "食料品"))
    niimi = issue(ledger, clock, 1, grants=((date(2023, 3, 1), 5000),))
    issue(ledger, clock, 2, grants=((date(2023, 3, 2), 3000),), issuer="okayama")
    clock.set(date(2023, 3, 15))
    ledger.spend(niimi, 1200, request_id="pay-1", actor=Actor("terminal", "T-1", merchant="M-1"))
    ledger.grant(niimi, 345, request_id="rebate-1", actor=Actor("job", "rebate"), source=Source.REBATE)
    for issuer in ("niimi", "okayama"):
        services.reports().write_month(issuer, MONTH, as_of="2023-04-01")
    clock.set(date(2023, 4, 1))
    return bucket


def get(api, issuer: str, path: str, accept: str = "application/json"):
    return api.http.request("GET", PATH.format(issuer=issuer) + path, body=b"",
                            headers={ARN_HEADER: ARN, "accept": accept})


def error(response) -> tuple[int, str, str]:
    answer = json.loads(response.body)
    return response.status_code, answer["code"], answer["message"]


# -- the routes -------------------------------------------------------------------------------


def test_a_months_reports_are_listed_and_come_back_byte_for_byte(api, operators, with_identity, written):  # noqa: F811
    listing = get(api, "niimi", f"/{MONTH}")

    assert listing.status_code == 200
    answer = json.loads(listing.body)
    assert (answer["issuer"], answer["month"], answer["complete"]) == ("niimi", MONTH, True)
    assert [f["name"] for f in answer["files"]] == list(REPORTS)
    for f in answer["files"]:
        assert f["file"] == f"niimi-{MONTH}-{f['name']}.csv"
        assert f["size"] == written.size("niimi", MONTH, f["name"]) > len(BOM)
        assert f["written_at"].startswith("20")  # an ISO instant from S3

        download = get(api, "niimi", f"/{MONTH}/{f['name']}", accept="text/csv")
        assert download.status_code == 200
        assert download.body == written.read("niimi", MONTH, f["name"])  # as stored: BOM, CRLF, UTF-8
        assert download.body.startswith(BOM) and b"\r\n" in download.body
        assert download.headers["Content-Type"] == "text/csv; charset=utf-8"
        assert download.headers["Content-Disposition"] == f'attachment; filename="{f["file"]}"'

    settlement = get(api, "niimi", f"/{MONTH}/settlement", accept="text/csv").body.decode("utf-8-sig")
    assert f"{MONTH},M-1,新見精肉店,1200,0,1200" in settlement.splitlines()
    grants = get(api, "niimi", f"/{MONTH}/grants").body.decode("utf-8-sig")  # Accept is the client's choice
    assert f"{MONTH},rebate,還元,345" in grants.splitlines()


def test_bad_months_and_names_are_refused_and_a_month_not_written_says_how_to_write_it(
    api, operators, with_identity, written  # noqa: F811
):
    for month in ("2023-3", "2023-13", "2023-00", "23-03", "２０２３-03", "2023-03-01", "..", "2023-03.csv"):
        response = get(api, "niimi", f"/{month}")
        assert error(response)[:2] == (400, "invalid_month"), month
        assert error(get(api, "niimi", f"/{month}/settlement"))[:2] == (400, "invalid_month"), month

    for name in ("manifest", "settlement.csv", "SETTLEMENT", "..", "..%2Fmanifest.json", "%2E%2E"):
        status, code, message = error(get(api, "niimi", f"/{MONTH}/{name}"))
        assert (status, code) == (404, "unknown_report"), name
        assert message.endswith("the reports are settlement, outstanding, expired, grants, campaigns, reconciliation")
    # Nothing outside the month's report files is reachable, however the name is spelled.
    assert get(api, "niimi", f"/{MONTH}/..%2F..%2F{MONTH}%2Fsettlement").status_code == 404

    status, code, message = error(get(api, "niimi", "/2023-02"))
    assert (status, code) == (404, "reports_not_written")
    assert "write-reports schedule writes last month's reports on the 1st" in message
    assert "python -m chalicelib.reports month --issuer niimi --month 2023-02" in message
    status, code, message = error(get(api, "niimi", "/2023-02/settlement"))
    assert (status, code) == (404, "reports_not_written") and "the settlement report of 2023-02" in message


def test_an_issuers_path_reaches_only_its_own_reports(api, operators, with_identity, written):  # noqa: F811
    okayama = get(api, "okayama", f"/{MONTH}/outstanding", accept="text/csv")
    niimi = get(api, "niimi", f"/{MONTH}/outstanding", accept="text/csv")

    assert okayama.body == written.read("okayama", MONTH, "outstanding") != niimi.body
    assert "2023-04-01,2023-09,3000" in okayama.body.decode("utf-8-sig").splitlines()  # okayama's card only
    assert json.loads(get(api, "okayama", f"/{MONTH}").body)["files"][0]["file"] == f"okayama-{MONTH}-settlement.csv"
    written.s3.delete_object(Bucket=written.name, Key=keys.report_object("okayama", MONTH, "grants"))
    assert error(get(api, "okayama", f"/{MONTH}/grants"))[:2] == (404, "reports_not_written")  # not niimi's file
    assert get(api, "niimi", f"/{MONTH}/grants").status_code == 200
    for issuer in ("nii", "niimi2", "nowhere"):  # a prefix of an issuer, or none: nothing
        assert error(get(api, issuer, f"/{MONTH}"))[:2] == (404, "reports_not_written"), issuer


def test_a_month_whose_run_has_not_finished_is_listed_as_not_complete(api, operators, with_identity, bucket):  # noqa: F811
    key = keys.report_object("niimi", MONTH, "settlement")
    bucket.s3.put_object(Bucket=bucket.name, Key=key, Body=BOM + b"a,b\r\n", ContentType="text/csv; charset=utf-8")

    answer = json.loads(get(api, "niimi", f"/{MONTH}").body)

    assert answer["complete"] is False and [f["name"] for f in answer["files"]] == ["settlement"]
    assert answer["files"][0]["size"] == len(BOM + b"a,b\r\n")
    assert error(get(api, "niimi", f"/{MONTH}/expired"))[:2] == (404, "reports_not_written")


# -- the CLI ----------------------------------------------------------------------------------


def test_the_cli_lists_a_month_and_writes_every_file_byte_for_byte(gateway, written, capsys, tmp_path):  # noqa: F811
    code, out, err = run(gateway, "report", "list", MONTH, capsys=capsys)
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0] == f"reports of {MONTH} for niimi"
    assert [line.split()[:2] for line in lines[2:]] == [[n, f"niimi-{MONTH}-{n}.csv"] for n in REPORTS]

    code, out, err = run(gateway, "report", "get", MONTH, "--out", str(tmp_path / "march"), capsys=capsys)

    assert (code, err) == (0, "")
    assert sorted(p.name for p in (tmp_path / "march").iterdir()) == sorted(f"niimi-{MONTH}-{n}.csv" for n in REPORTS)
    for n in REPORTS:
        saved = tmp_path / "march" / f"niimi-{MONTH}-{n}.csv"
        assert saved.read_bytes() == written.read("niimi", MONTH, n) and saved.read_bytes().startswith(BOM)
        assert f"wrote {saved} ({saved.stat().st_size:,} bytes)" in out.splitlines()
    downloads = [r for r in gateway.received if r["path"].startswith(PATH.format(issuer="niimi") + f"/{MONTH}/")]
    assert len(downloads) == len(REPORTS) and all(r["headers"]["Accept"] == "text/csv" for r in downloads)
    assert all(r["problem"] is None for r in gateway.received)  # every request signed validly


def test_the_cli_gets_named_reports_into_the_current_folder(gateway, written, capsys, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.chdir(tmp_path)

    code, out, _ = run(gateway, "report", "get", MONTH, "settlement", "grants", capsys=capsys)

    assert code == 0 and sorted(p.name for p in tmp_path.iterdir()) == [f"niimi-{MONTH}-grants.csv",
                                                                         f"niimi-{MONTH}-settlement.csv"]
    assert (tmp_path / f"niimi-{MONTH}-settlement.csv").read_bytes() == written.read("niimi", MONTH, "settlement")
    assert len(out.splitlines()) == 2
    assert [r["path"].rsplit("/", 1)[1] for r in gateway.received] == ["settlement", "grants"]  # no listing needed


def test_the_cli_says_plainly_why_a_report_cannot_be_had_and_writes_nothing(gateway, written, capsys, tmp_path):  # noqa: F811
    out_dir = tmp_path / "out"

    code, out, err = run(gateway, "report", "get", "2023-02", "--out", str(out_dir), capsys=capsys)
    assert (code, out) == (1, "") and err.startswith("error: refused (HTTP 404): no reports of 2023-02 for niimi yet")
    assert "python -m chalicelib.reports month --issuer niimi --month 2023-02" in err
    code, _, err = run(gateway, "report", "get", MONTH, "settlement", "budget", "--out", str(out_dir), capsys=capsys)
    assert code == 1 and "no report 'budget'" in err and "(unknown_report)" in err
    assert not out_dir.exists()  # the settlement file came, but nothing is written unless all do
    code, _, err = run(gateway, "report", "list", "2023-3", capsys=capsys)
    assert code == 1 and "'2023-3' is not a month: give it as YYYY-MM" in err and "(invalid_month)" in err
