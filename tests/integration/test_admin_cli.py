"""The admin CLI (`python -m tools.admin`) against a stand-in for API Gateway on
127.0.0.1 that checks every request's SigV4 signature with botocore before passing it to
the app: it signs with the default credential chain, prints results readably, and
errors plainly with a non-zero exit."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
from botocore.credentials import Credentials

from chalicelib import observability
from tests.integration.test_operators_api import BIRTH, card_no, idm_of, issue
from tests.operators import ARN, fake_gateway, operators, with_identity  # noqa: F401  (fixtures)
from tools import admin as cli
from tools.admin import grants, transport

pytestmark = pytest.mark.filterwarnings("ignore:IAMAuthorizer is not a supported in local mode")

ROOT = Path(__file__).resolve().parents[2]
KEY, SECRET, TOKEN = "AKIDADMINCLITEST", "cli-test-secret", "cli-test-session-token"


@pytest.fixture
def creds(monkeypatch) -> Credentials:
    """Operator credentials in the environment: the first link of the default chain."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("AWS_SESSION_TOKEN", TOKEN)
    return Credentials(KEY, SECRET, TOKEN)


@pytest.fixture
def gateway(api, operators, with_identity, creds, clock):  # noqa: F811
    clock.set(date(2023, 4, 1))
    with fake_gateway(api, creds) as gw:
        yield gw


def run(gw, *args: str, capsys) -> tuple[int, str, str]:
    # The app's JSON log handler keeps the stdout it was first made with: if that was an
    # earlier test's capsys (closed since), every line would be a "Logging error" on stderr.
    # Point it at this test's stdout, where the lines are checked below. (Assigned, not
    # setStream, which flushes the old stream first.)
    handler = observability.logger().registered_handler
    before, handler.stream = handler.stream, sys.stdout
    try:
        code = cli.main(["--api", gw.url, "--issuer", "niimi", *args])
    finally:
        handler.stream = before
    out, err = capsys.readouterr()
    # The app runs in this process: its JSON log lines land in the same stdout.
    logs = [line for line in out.splitlines(keepends=True) if line.startswith('{"level"')]
    for line in logs:
        assert card_no(1)[2:] not in line and BIRTH not in line  # no card number, no birth date in logs
    return code, "".join(line for line in out.splitlines(keepends=True) if line not in logs), err


def fields(out: str) -> dict[str, str]:
    """The `name  value` lines the CLI prints for one record."""
    return dict(line.split(None, 1) for line in out.splitlines() if len(line.split(None, 1)) == 2)


def test_the_cli_signs_every_request_with_sigv4_and_prints_the_card(gateway, ledger, clock, capsys):
    issue(ledger, clock, 1, grants=((date(2022, 10, 24), 5000), (date(2022, 11, 30), 123)))
    clock.set(date(2023, 4, 1))

    code, out, err = run(gateway, "card", "show", card_no(1), capsys=capsys)

    assert (code, err) == (0, "")
    assert f"Card {card_no(1)}" in out and "status issued" in out and "Balance 5,123 pt as of 2023-04-01" in out
    assert "valid 2022-10-24 to 2023-04-23  initial   live" in out
    assert "grant" in out and "+123" in out
    [request] = gateway.received
    assert request["problem"] is None  # botocore computes the same signature
    auth = request["headers"]["Authorization"]
    assert auth.startswith(f"AWS4-HMAC-SHA256 Credential={KEY}/") and "/ap-northeast-1/execute-api/aws4_request" in auth
    assert request["headers"]["X-Amz-Security-Token"] == TOKEN
    assert request["path"] == "/api/admin/v1/issuers/niimi/cards/lookup"
    assert card_no(1) not in request["path"]  # card numbers travel in bodies, not in logged paths


def test_card_return_reissue_and_void_through_the_cli(gateway, ledger, clock, capsys):
    returned, broken = issue(ledger, clock, 1), issue(ledger, clock, 2)
    voided = issue(ledger, clock, 3)
    clock.set(date(2023, 4, 1))

    code, out, _ = run(gateway, "card", "return", card_no(1), "--reason", "moving", "--note", "転出",
                       "--request-id", "ret-1", capsys=capsys)
    assert code == 0 and fields(out)["status"] == "returned" and fields(out)["request_id"] == "ret-1"
    code, again, _ = run(gateway, "card", "return", card_no(1), "--reason", "moving", "--note", "転出",
                         "--request-id", "ret-1", capsys=capsys)
    assert code == 0 and fields(again) == fields(out)  # repeated: the same answer
    entry = ledger.history(returned, limit=1).entries[0]
    assert entry.actor.as_dict() == {"kind": "operator", "id": ARN} and entry.reason == "return (moving): 転出"

    code, out, _ = run(gateway, "card", "reissue", card_no(2), "--new-number", card_no(4), "--new-idm",
                       idm_of(4).upper(), capsys=capsys)
    assert code == 0 and fields(out)["moved"] == "5000" and fields(out)["closed_as"] == "void"
    assert ledger.balance(idm_of(4)).balance == 5000 and ledger.card(broken).status.value == "void"

    code, out, _ = run(gateway, "--json", "card", "void", card_no(3), "--note", "誤発行", "--close", capsys=capsys)
    assert code == 0 and '"status": "void"' in out and ledger.card(voided).status.value == "void"
    assert all(r["problem"] is None for r in gateway.received)


def test_refusals_are_printed_plainly_with_a_non_zero_exit(gateway, ledger, clock, capsys, monkeypatch):
    issue(ledger, clock, 7, issuer="okayama")
    clock.set(date(2023, 4, 1))

    code, out, err = run(gateway, "card", "show", card_no(5), capsys=capsys)
    assert (code, out) == (1, "") and err == "error: refused (HTTP 404): no such card (card_not_found)\n"
    code, _, err = run(gateway, "card", "return", card_no(7), "--reason", "death", capsys=capsys)
    assert code == 1 and "belongs to another issuer (wrong_issuer)" in err

    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "a-stolen-key-id-without-its-secret")
    code, _, err = run(gateway, "merchant", "list", capsys=capsys)
    assert code == 1 and err.startswith("error: refused (HTTP 403): Forbidden: the signature does not match")


def test_an_unreachable_api_says_so_and_how_to_repeat_the_change(capsys, creds, monkeypatch):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once closed
    code = cli.main(["--api", f"http://127.0.0.1:{port}", "--issuer", "niimi", "card", "void", card_no(1),
                     "--note", "x", "--request-id", "void-77"])
    err = capsys.readouterr().err
    assert code == 2 and "no answer from" in err and "--request-id void-77" in err
    monkeypatch.delenv("CHIIKI_ADMIN_API", raising=False)
    assert cli.main(["--issuer", "niimi", "merchant", "list"]) == 2
    assert "give the API's URL" in capsys.readouterr().err


def test_a_grant_list_file_is_sent_in_parts_and_rows_are_reported_as_the_spreadsheet_numbers_them(
    gateway, ledger, clock, capsys, tmp_path, monkeypatch
):
    for n in (1, 2, 3):
        issue(ledger, clock, n)
    clock.set(date(2023, 4, 1))
    listing = tmp_path / "volunteers 2023-04.csv"
    rows = ["card_number,points", f"{card_no(1)},200", f"{card_no(9)},200", f"{card_no(2)},abc", "",
            f"{card_no(2)},200", f"{card_no(3)},500"]
    listing.write_bytes("\ufeff".encode() + "\r\n".join(rows).encode())
    monkeypatch.setattr(grants, "GRANT_LIST_CHUNK", 2)

    code, out, _ = run(gateway, "grant-list", str(listing), "--reason", "ボランティア", capsys=capsys)

    assert code == 0
    assert out.splitlines() == [
        "list volunteers-2023-04: 3 cards granted, 900 pt",
        "  row 3: no card with this card number",
        "  row 4: points must be a positive whole number, not 'abc'",
    ]
    assert len(gateway.received) == 2  # four good rows in parts of two
    assert [ledger.balance(idm_of(n)).balance for n in (1, 2, 3)] == [5200, 5200, 5500]
    code, again, _ = run(gateway, "grant-list", str(listing), "--reason", "ボランティア", capsys=capsys)
    assert code == 0 and again.splitlines() == [  # sent again: nobody granted twice
        "list volunteers-2023-04: 0 cards granted, 0 pt, 3 already granted", *out.splitlines()[1:]]
    assert [ledger.balance(idm_of(n)).balance for n in (1, 2, 3)] == [5200, 5200, 5500]


def test_registry_and_jobs_through_the_cli(gateway, ledger, clock, capsys, tmp_path, terminal_service):
    from terminal_agent.signing import public_key_pem
    from tests.terminals import new_key

    assert run(gateway, "merchant", "add", "M-1", "--name", "新見精肉店", "--area", "新見", "--category", "食料品",
               capsys=capsys)[0] == 0
    code, out, _ = run(gateway, "merchant", "list", capsys=capsys)
    assert code == 0 and out.splitlines()[1].split() == ["M-1", "新見精肉店", "新見", "食料品", "-"]
    pem = tmp_path / "t1.pub.pem"
    pem.write_text(public_key_pem(new_key()))
    assert run(gateway, "terminal", "add", "T-1", "--mode", "store", "--merchant", "M-1", "--key", str(pem),
               capsys=capsys)[0] == 0
    code, out, _ = run(gateway, "terminal", "disable", "T-1", capsys=capsys)
    assert code == 0 and fields(out)["status"] == "disabled"
    assert terminal_service.store.get_terminal("T-1").status.value == "disabled"
    code, _, err = run(gateway, "terminal", "add", "T-1", "--mode", "store", "--merchant", "M-1", "--key",
                       str(pem), capsys=capsys)
    assert code == 1 and "send replace_key to rotate its key (terminal_exists)" in err

    issue(ledger, clock, 1)
    clock.set(date(2023, 4, 24))
    code, out, _ = run(gateway, "job", "run", "expiry", capsys=capsys)
    assert code == 0 and out.startswith("job expiry done") and fields(out)["points"] == "5000"


def test_the_issuers_settings_through_the_cli(gateway, ledger, capsys):
    code, out, _ = run(gateway, "settings", "show", capsys=capsys)
    assert code == 0 and fields(out)["closures"] == "[]" and fields(out)["rebate_bps"] == "100"
    code, out, _ = run(gateway, "settings", "set", "--add-closure", "2022-11-30", "--add-closure", "2022-11-29",
                       "--rebate-bps", "150", capsys=capsys)
    assert code == 0 and fields(out)["closures"] == '["2022-11-29", "2022-11-30"]'
    code, out, _ = run(gateway, "settings", "set", "--remove-closure", "2022-11-29", capsys=capsys)
    assert code == 0 and fields(out)["rebate_bps"] == "150"
    issuer = ledger.issuer("niimi")
    assert (issuer.closures, issuer.rebate_bps) == ((date(2022, 11, 30),), 150)
    code, _, err = run(gateway, "settings", "set", capsys=capsys)
    assert code == 2 and "nothing to change" in err
    code, _, err = run(gateway, "settings", "set", "--add-closure", "30 Nov", capsys=capsys)
    assert code == 1 and "invalid_request" in err and ledger.issuer("niimi").closures == (date(2022, 11, 30),)


def test_the_cli_runs_as_a_module(gateway, creds):
    env = {**os.environ, "CHIIKI_ADMIN_API": gateway.url, "CHIIKI_ADMIN_ISSUER": "niimi"}
    done = subprocess.run([sys.executable, "-m", "tools.admin", "campaign", "list"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout.strip(), done.stderr) == (0, "(none)", "")
    assert gateway.received[-1]["problem"] is None


def test_without_credentials_only_a_loopback_api_gets_a_placeholder_signature(monkeypatch):
    import botocore.session

    monkeypatch.setattr(botocore.session.Session, "get_credentials", lambda self: None)
    assert transport.credentials_for("http://127.0.0.1:8000/api").access_key == "local"
    with pytest.raises(transport.Failed) as refused:
        transport.credentials_for("https://abc123.execute-api.ap-northeast-1.amazonaws.com/api")
    assert refused.value.exit_code == 2


def test_the_signing_region_comes_from_the_execute_api_host():
    assert transport.region_for("https://abc123.execute-api.us-west-2.amazonaws.com/api", None) == "us-west-2"
    assert transport.region_for("https://abc123.execute-api.us-west-2.amazonaws.com/api", "eu-west-1") == "eu-west-1"
    assert transport.region_for("http://127.0.0.1:8000", None) == os.environ.get("AWS_REGION", "ap-northeast-1")


def test_birth_dates_never_reach_the_cli_output(gateway, ledger, clock, capsys):
    issue(ledger, clock, 1)
    clock.set(date(2023, 4, 1))
    code, out, _ = run(gateway, "--json", "card", "show", card_no(1), capsys=capsys)
    assert code == 0 and BIRTH not in out


# -- CSV imports ------------------------------------------------------------------------


@pytest.fixture
def import_with(ledger, terminal_service, monkeypatch):
    """The import route's importer on the test table; `import_with(now=…)` gives it a clock
    (read once for the deadline, then once before each row)."""
    import time

    from chalicelib import services
    from chalicelib.imports.service import Importer
    from chalicelib.imports.store import RunStore

    def use(now=time.monotonic) -> None:
        importer = Importer(ledger, terminal_service, RunStore(ledger.store.table), now=now)
        monkeypatch.setattr(services, "importer", lambda: importer)

    use()
    return use


def cards_file(path: Path, *lines: str) -> Path:
    """A cards CSV as Excel saves it: BOM, CRLF."""
    path.write_bytes(("\ufeff" + "\r\n".join(["card_number,idm,birth_date,points,granted_on", *lines])).encode())
    return path


def card_line(n: int) -> str:
    return f"{card_no(n)},{idm_of(n)},{BIRTH},5000,2023-03-25"


def test_a_csv_import_prints_each_rejected_row_and_saves_the_result_file_beside_the_input(
    gateway, import_with, ledger, capsys, tmp_path
):
    bad = "JW1,x,1980-04-01,5000,2023-03-25"
    source = cards_file(tmp_path / "cards.csv", card_line(1), card_line(2), bad)

    code, out, err = run(gateway, "import", "cards", str(source), capsys=capsys)

    assert (code, err) == (0, "")  # rejected rows are the file's to fix: the import itself is done
    result = tmp_path / "cards.result.csv"
    assert out.splitlines() == [
        "cards from cards.csv: 2 imported, 0 unchanged (already imported), 1 rejected, 10,000 pt granted",
        "  row 4: the card number must be JW followed by 15 digits (17 characters)",
        f"result file: {result}",
    ]
    saved = result.read_bytes()
    assert saved.startswith("\ufeff".encode() + b"file,admin API (cards)")  # with its BOM, for Excel
    assert bad.encode() in saved and b"the card number must be JW followed by 15 digits" in saved
    assert [ledger.balance(idm_of(n)).balance for n in (1, 2)] == [5000, 5000]
    [request] = gateway.received
    assert request["problem"] is None and request["headers"]["Content-Type"] == "text/csv"
    assert request["path"] == "/api/admin/v1/issuers/niimi/imports/cards"

    code, again, _ = run(gateway, "import", "cards", str(source), capsys=capsys)
    assert code == 0 and again.splitlines()[0] == "cards from cards.csv: 0 imported, 2 unchanged (already imported), " \
                                                  "1 rejected"
    assert [ledger.balance(idm_of(n)).balance for n in (1, 2)] == [5000, 5000]  # sent twice: granted once


def test_an_import_stopped_by_time_says_to_run_it_again_and_the_same_command_finishes_it(
    gateway, import_with, ledger, capsys, tmp_path
):
    reads = iter([0.0] * 3)  # the deadline, then two rows; the third row's read is past it
    import_with(now=lambda: next(reads, 1e9))
    source = cards_file(tmp_path / "cards-2023-04.csv", card_line(1), card_line(2), card_line(3))

    code, out, err = run(gateway, "import", "cards", str(source), capsys=capsys)

    assert (code, err) == (3, "")
    assert out.splitlines()[0] == "cards from cards-2023-04.csv: 2 imported, 0 unchanged (already imported), " \
                                  "0 rejected, 10,000 pt granted"
    assert out.splitlines()[-1] == ("time ran out after 2 of 3 rows: the rows so far are done; run the same "
                                    "command again to go on (rows already done come back unchanged)")
    assert (tmp_path / "cards-2023-04.result.csv").read_bytes().startswith("\ufeff".encode())
    assert [ledger.balance(idm_of(n)).balance for n in (1, 2)] == [5000, 5000]
    assert ledger.store.get_card(idm_of(3)) is None

    import_with()  # time enough now
    code, out, _ = run(gateway, "import", "cards", str(source), capsys=capsys)
    assert code == 0 and out.splitlines()[0] == ("cards from cards-2023-04.csv: 1 imported, 2 unchanged (already "
                                                 "imported), 0 rejected, 5,000 pt granted")
    assert "time ran out" not in out
    assert [ledger.balance(idm_of(n)).balance for n in (1, 2, 3)] == [5000, 5000, 5000]


def test_an_import_the_api_refuses_or_a_file_not_read_exits_non_zero_and_saves_nothing(
    gateway, import_with, ledger, capsys, tmp_path
):
    source = cards_file(tmp_path / "cards.csv", card_line(1))

    code, out, err = run(gateway, "import", "merchants", str(source), capsys=capsys)  # the wrong kind's columns
    assert (code, out) == (1, "") and err.startswith("error: refused (HTTP 400): ") and "(import_refused)" in err
    code, _, err = run(gateway, "import", "cards", str(tmp_path / "missing.csv"), capsys=capsys)
    assert code == 2 and err.startswith(f"error: cannot read {tmp_path / 'missing.csv'}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cards.csv"]  # no result file
    assert list(ledger.store.card_ids()) == []


def test_reconciliation_is_set_through_the_cli(gateway, ledger, capsys):
    assert ledger.issuer("niimi").reconciliation is None  # the stage's default (off in tests)
    code, out, _ = run(gateway, "settings", "set", "--reconciliation", "required", capsys=capsys)
    assert code == 0 and fields(out)["reconciliation"] == "True"
    assert ledger.issuer("niimi").reconciliation is True
    code, out, _ = run(gateway, "settings", "set", "--reconciliation", "off", capsys=capsys)
    assert code == 0 and ledger.issuer("niimi").reconciliation is False
    code, out, _ = run(gateway, "settings", "set", "--reconciliation", "default", capsys=capsys)
    assert code == 0 and ledger.issuer("niimi").reconciliation is None
