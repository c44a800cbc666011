"""Reconciliation with the e-money acquirer's settlement file (SPEC §6.2, §10), on moto:
records come in through signed terminal requests, the settlement file through the
imports bucket (the same path as every import), and the rebate job runs with the clock
moved. Under reconciliation a record earns only once a line of the file matches it,
exactly once; a month's rebate waits for its file (counted for the reconciliation-late
alarm) and is granted the first business day after it comes; unmatched records and
lines are reported. The `ledger` fixture checks the invariants at teardown."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime

import boto3
import pytest

from chalicelib import observability
from chalicelib.imports import keys as import_keys
from chalicelib.imports.domain import Kind
from chalicelib.imports.service import Importer
from chalicelib.imports.store import ImportFiles, RunStore
from chalicelib.job_progress import JobState
from chalicelib.jobs.rebate import run_rebates
from chalicelib.ledger.domain import Actor, Source
from chalicelib.reconciliation import domain as recon
from chalicelib.reconciliation.service import Reconciliation
from chalicelib.reconciliation.store import ReconciliationStore
from chalicelib.reports import domain as report_domain
from chalicelib.reports.service import Reports
from tests.integration.test_rebate_job import jst
from tests.terminals import register_demo

V1 = "/api/terminal/v1"
REGION = "ap-northeast-1"
IMPORTS, REPORTS = "test-imports", "test-reports"
ISSUED = date(2022, 10, 24)
OPERATOR = Actor("operator", "ops")
HEADER = "カード番号,IDm,取引通番,金額,利用日時,端末ID"


class Ticks:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        self.t += 1
        return self.t


class World:
    def __init__(self, ledger, terminals, clock, tills) -> None:
        self.ledger, self.terminals, self.clock, self.tills = ledger, terminals, clock, tills
        self.seq = 0
        self.s3 = boto3.client("s3", region_name=REGION)
        for bucket in (IMPORTS, REPORTS):
            self.s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
        self.s3.put_bucket_versioning(Bucket=IMPORTS, VersioningConfiguration={"Status": "Enabled"})
        self.ticks = Ticks()
        self.recon = ReconciliationStore()

    def card(self, n: int) -> tuple[str, str]:
        idm, number = f"0c{n:014x}", f"JW{n:015d}"
        self.clock.set(ISSUED)
        self.ledger.open_card(idm=idm, card_number=number, issuer_id="niimi")
        self.ledger.grant(idm, 5000, request_id=f"import:{idm}", actor=OPERATOR, source=Source.INITIAL)
        return idm, number

    def pay(self, idm: str, amount: int, at: datetime, *, till: str = "store", recorded_at=None) -> int:
        self.seq += 1
        self.clock.set(recorded_at or at)
        body = {"request_id": f"e{self.seq}", "idm": idm, "amount": amount, "paid_at": at.isoformat(),
                "card_seq": self.seq}
        status, answer = self.tills[till].post_at(f"{V1}/emoney-payments", body, self.clock.now)
        assert status == 200, answer
        return self.seq

    def cancel(self, idm: str, card_seq: int, on: date, *, till: str = "store") -> None:
        self.clock.set(on)
        body = {"request_id": f"x{card_seq}", "idm": idm, "card_seq": card_seq}
        status, answer = self.tills[till].post_at(f"{V1}/emoney-payments/cancel", body, self.clock.now)
        assert status == 200, answer

    def importer(self, **kw) -> Importer:
        kw.setdefault("now", self.ticks)
        return Importer(self.ledger, self.terminals, RunStore(self.ledger.store.table),
                        ImportFiles(self.s3, IMPORTS, REPORTS),
                        reconciliation=Reconciliation(self.ledger, self.recon, self.terminals), **kw)

    def put(self, name: str, lines: list[str]) -> str:
        key = f"niimi/emoney-settlements/{name}.csv"
        body = "\ufeff" + "\r\n".join([HEADER, *lines]) + "\r\n"
        self.s3.put_object(Bucket=IMPORTS, Key=key, Body=body.encode("utf-8"))
        return key

    def settle(self, name: str, lines: list[str], on: date, **kw):
        """The acquirer's file arrives (dropped in the imports bucket) on `on`."""
        self.clock.set(on)
        return self.importer(**kw).handle_s3_object(IMPORTS, self.put(name, lines))

    def result(self, key: str) -> tuple[dict[str, str], list[list[str]]]:
        raw = self.s3.get_object(Bucket=REPORTS, Key=import_keys.result(key))["Body"].read()
        lines = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"), newline="")))
        blank = lines.index([])
        return {line[0]: line[1] for line in lines[:blank]}, lines[blank + 2:]

    def rebate(self, day: date):
        self.clock.set(day)
        return run_rebates(self.ledger, self.terminals.rebates, "niimi", on=day,
                           state=JobState(),
                           reconciliation=Reconciliation(self.ledger, self.recon))

    def rebates(self, idm: str) -> list[tuple[date, int]]:
        return [(e.day, e.result["granted"]) for e in reversed(self.ledger.history(idm, limit=100).entries)
                if e.kind == "grant" and e.result["source"] == "rebate"]

    def report(self, month: str) -> list[list[str]]:
        rows = Reconciliation(self.ledger, self.recon).report_rows(self.ledger.issuer("niimi"), month)
        body = report_domain.to_csv(recon.HEADER, rows)
        assert body.startswith("\ufeff".encode())
        return list(csv.reader(io.StringIO(body.decode("utf-8-sig"), newline="")))


def line(number: str, seq: int, amount: int, at: str, terminal: str = "T-STORE", idm: str = "") -> str:
    return f"{number},{idm},{seq},{amount},{at},{terminal}"


@pytest.fixture
def world(api, terminal_service, ledger, clock) -> World:
    tills = register_demo(terminal_service, api)
    ledger.change_issuer("niimi", reconciliation=True)
    return World(ledger, terminal_service, clock, tills)


def test_a_record_earns_a_rebate_only_once_a_settlement_line_matches_it(world):
    idm, number = world.card(1)
    first = world.pay(idm, 10_000, jst(2022, 10, 5))
    world.pay(idm, 2_345, jst(2022, 10, 6))  # never in the acquirer's file
    # A forged record of 10,000,000 yen from a terminal's key earns nothing without its line.
    report = world.settle("2022-10", [line(number, first, 10_000, "2022-10-05 12:00")], date(2022, 11, 10))
    assert report.complete and (report.tally.imported, report.tally.unmatched) == (1, 0)

    world.rebate(date(2022, 11, 30))
    assert world.rebates(idm) == [(date(2022, 11, 30), 100)]  # floor(10,000 × 1 %), not 123

    rows = world.report("2022-10")
    assert rows[0] == list(recon.HEADER)
    assert rows[1] == ["2022-10", recon.RECORD_KIND, "", idm, "2", "2345", "2022-10-06 12:00:00", "T-STORE",
                       recon.AWAITING_RECORD]
    assert rows[-1][1:] == ["精算ファイル受領日", "", "", "", "", "2022-11-10", "", ""]


def test_without_reconciliation_records_earn_on_the_terminals_word_as_before(world):
    world.ledger.change_issuer("niimi", reconciliation=False)
    idm, _ = world.card(1)
    world.pay(idm, 12_345, jst(2022, 10, 5))
    world.rebate(date(2022, 11, 30))
    assert world.rebates(idm) == [(date(2022, 11, 30), 123)]


def test_lines_that_match_nothing_are_unmatched_listed_and_reported_not_a_failed_file(world):
    idm, number = world.card(1)
    other_idm, _ = world.card(2)
    a = world.pay(idm, 1_000, jst(2022, 10, 5))
    b = world.pay(idm, 2_000, jst(2022, 10, 6))
    c = world.pay(other_idm, 3_000, jst(2022, 10, 7), till="store2")
    lines = [
        line(number, a, 1_000, "2022-10-05 12:00"),  # matches
        line(number, b, 2_500, "2022-10-06 12:00"),  # another amount
        line("", c, 3_000, "2022-10-07 12:00", terminal="T-STORE", idm=other_idm),  # another terminal
        line(number, 99, 500, "2022-10-08 12:00"),  # no such record
        line("JW999999999999999", 1, 700, "2022-10-09 12:00"),  # no such card
        line(number, a, 1_000, "2022-10-05 12:00"),  # the same line twice in one file
        "JW1,,1,100,2022-10-09 12:00,T-STORE",  # a malformed row: rejected
    ]
    report = world.settle("2022-10", lines, date(2022, 11, 10))
    assert report.complete
    assert (report.tally.imported, report.tally.unmatched, report.tally.rejected) == (1, 4, 2)
    summary, listed = world.result("niimi/emoney-settlements/2022-10.csv")
    assert summary["status"] == "complete" and summary["unmatched (see the reconciliation report)"] == "4"
    reasons = {int(r[0]): r[1] for r in listed}
    assert reasons[3] == recon.AMOUNT_DIFFERS.format(amount=2_000)
    assert reasons[4] == recon.TERMINAL_DIFFERS.format(terminal="T-STORE2")
    assert reasons[5] == recon.NO_RECORD and reasons[6] == recon.NO_CARD
    assert "already on row 2" in reasons[7] and "card number" in reasons[8]

    rows = world.report("2022-10")
    kinds = [(r[1], r[4], r[8]) for r in rows[1:-2]]
    assert (recon.RECORD_KIND, str(b), recon.AWAITING_RECORD) in kinds
    assert (recon.RECORD_KIND, str(c), recon.AWAITING_RECORD) in kinds
    assert (recon.LINE_KIND, str(b), recon.AMOUNT_DIFFERS.format(amount=2_000)) in kinds
    assert (recon.LINE_KIND, "99", recon.NO_RECORD) in kinds and len(kinds) == 6
    assert rows[-2][8] == "端末の記録 2件、精算行 4件"

    world.rebate(date(2022, 11, 30))
    assert world.rebates(idm) == [(date(2022, 11, 30), 10)] and world.rebates(other_idm) == []


def test_each_line_matches_once_and_a_file_imported_again_changes_nothing(world):
    idm, number = world.card(1)
    seqs = [world.pay(idm, 1_000 * n, jst(2022, 10, n)) for n in range(1, 6)]
    lines = [line(number, s, 1_000 * n, f"2022-10-0{n} 12:00") for n, s in enumerate(seqs, start=1)]
    first = world.settle("2022-10", lines, date(2022, 11, 10))
    again = world.settle("2022-10", lines, date(2022, 11, 11))  # the same file dropped again: a new version
    assert (first.tally.imported, again.tally.imported, again.tally.unchanged) == (5, 0, 5)
    # Another line for a record already matched (by IDm this time, another amount) is unmatched.
    other = world.settle("extra", [line("", seqs[0], 9_000, "2022-10-01 12:00", idm=idm)], date(2022, 11, 12))
    assert other.tally.unmatched == 1 and other.rejections[0].reason == recon.OTHER_LINE
    duplicate = world.settle("dup", [line("", seqs[0], 1_000, "2022-10-01 12:01", idm=idm)], date(2022, 11, 12))
    assert duplicate.tally.unmatched == 1 and duplicate.rejections[0].reason == recon.OTHER_LINE

    world.rebate(date(2022, 11, 30))
    assert world.rebates(idm) == [(date(2022, 11, 30), 150)]  # floor(15,000 × 1 %): each payment once
    assert world.terminals.rebates.accrual("niimi", "2022-10", idm).weighted == 15_000 * 100


def test_a_run_killed_between_chunks_resumes_and_matches_each_line_once(world):
    idm, number = world.card(1)
    seqs = [world.pay(idm, 100 * n + 1, jst(2022, 10, 1 + n)) for n in range(1, 11)]
    lines = [line(number, s, 100 * n + 1, f"2022-10-{1 + n:02d} 12:00") for n, s in enumerate(seqs, start=1)]
    calls = []

    def dies_at_row_7(record, ctx):
        calls.append(record.card_seq)
        if len(calls) == 6:
            raise RuntimeError("the Lambda ran out of time")
        return real._settlement(record, ctx)

    real = world.importer()
    killed = world.importer(checkpoint_every=4, appliers={Kind.EMONEY_SETTLEMENTS: dies_at_row_7})
    world.clock.set(date(2022, 11, 10))
    key = world.put("2022-10", lines)
    with pytest.raises(RuntimeError):
        killed.handle_s3_object(IMPORTS, key)
    assert world.recon.received_on("niimi", "2022-10") is None  # not received until every row is done
    report = killed.handle_s3_object(IMPORTS, key)  # Lambda's retry, from the checkpoint
    assert report.complete and (report.tally.imported, report.tally.unchanged) == (9, 1)
    assert world.recon.received_on("niimi", "2022-10") == date(2022, 11, 10)

    world.rebate(date(2022, 11, 30))
    total = sum(100 * n + 1 for n in range(1, 11))
    assert world.rebates(idm) == [(date(2022, 11, 30), total // 100)]


def test_cancelled_records_earn_nothing_whether_matched_before_or_after(world):
    idm, number = world.card(1)
    kept = world.pay(idm, 5_000, jst(2022, 10, 3))
    before = world.pay(idm, 7_000, jst(2022, 10, 4))
    after = world.pay(idm, 9_000, jst(2022, 10, 5))
    world.cancel(idm, before, date(2022, 10, 20))  # cancelled while awaiting its line
    report = world.settle("2022-10", [line(number, s, a, f"2022-10-0{d} 12:00") for s, a, d in
                                      ((kept, 5_000, 3), (before, 7_000, 4), (after, 9_000, 5))], date(2022, 11, 10))
    assert (report.tally.imported, report.tally.unmatched) == (3, 0)
    world.cancel(idm, after, date(2022, 11, 15))  # cancelled once matched
    world.rebate(date(2022, 11, 30))
    assert world.rebates(idm) == [(date(2022, 11, 30), 50)]
    assert world.report("2022-10")[1][1] == "合計"  # nothing unmatched: a cancelled record is not awaited


def test_the_rebate_waits_for_the_months_file_counts_it_late_and_grants_the_next_business_day(world, monkeypatch):
    counted = []
    monkeypatch.setattr("chalicelib.jobs.rebate.count", lambda name, value=1, **d: counted.append(name))
    idm, number = world.card(1)
    seq = world.pay(idm, 12_345, jst(2022, 10, 31, 23, 59, 59))
    assert world.rebate(date(2022, 11, 29)).waiting is None and counted == []  # not its rebate day yet

    late = world.rebate(date(2022, 11, 30))  # the rebate day: no file
    assert (late.waiting, late.late, late.months) == ("2022-10", True, [])
    assert counted == [observability.RECONCILIATION_LATE] and world.rebates(idm) == []
    world.rebate(date(2022, 12, 1))
    assert counted == [observability.RECONCILIATION_LATE] * 2  # every run while it is late

    world.settle("2022-10", [line(number, seq, 12_345, "2022-10-31 23:59:59")], date(2022, 12, 2))  # Friday
    arrived = world.rebate(date(2022, 12, 2))
    assert (arrived.waiting, arrived.late, world.rebates(idm)) == ("2022-10", False, [])
    assert len(counted) == 2  # the file is here: no longer late
    world.rebate(date(2022, 12, 3))  # Saturday
    assert world.rebates(idm) == []
    granted = world.rebate(date(2022, 12, 5))  # the first business day after the file came
    assert granted.months == ["2022-10"] and world.rebates(idm) == [(date(2022, 12, 5), 123)]


def test_a_file_before_the_rebate_day_changes_nothing_and_a_late_month_holds_later_ones_only_until_it_goes(world):
    idm, number = world.card(1)
    october = world.pay(idm, 10_000, jst(2022, 10, 10))
    november = world.pay(idm, 20_000, jst(2022, 11, 10))
    world.settle("2022-11", [line(number, november, 20_000, "2022-11-10 12:00")], date(2022, 12, 9))
    held = world.rebate(date(2022, 12, 28))  # November's rebate day; October's file is still missing
    assert (held.waiting, held.months, world.rebates(idm)) == ("2022-10", [], [])

    world.settle("2022-10", [line(number, october, 10_000, "2022-10-10 12:00")], date(2023, 1, 5))
    assert world.rebate(date(2023, 1, 5)).months == []
    both = world.rebate(date(2023, 1, 6))  # the next business day: October, then November, in order
    assert both.months == ["2022-10", "2022-11"]
    assert world.rebates(idm) == [(date(2023, 1, 6), 100), (date(2023, 1, 6), 200)]


def test_a_match_after_the_month_was_settled_is_carried_like_a_late_record(world):
    idm, number = world.card(1)
    other, other_number = world.card(2)
    first = world.pay(idm, 10_000, jst(2022, 10, 10))
    second = world.pay(idm, 30_000 - 10_000, jst(2022, 10, 11))
    world.settle("2022-10", [line(number, first, 10_000, "2022-10-10 12:00")], date(2022, 11, 10))
    world.rebate(date(2022, 11, 30))
    assert world.rebates(idm) == [(date(2022, 11, 30), 100)]

    # The acquirer's correction file brings the second line in December: a late match.
    world.settle("2022-10-late", [line(number, second, 20_000, "2022-10-11 12:00")], date(2022, 12, 5))
    assert world.report("2022-10")[1][1] == "合計"  # nothing unmatched any more
    november = world.pay(other, 1_000, jst(2022, 11, 20))
    december = world.pay(other, 1_000, jst(2022, 12, 20))
    world.settle("2022-11", [line(other_number, november, 1_000, "2022-11-20 12:00")], date(2022, 12, 9))
    world.settle("2022-12", [line(other_number, december, 1_000, "2022-12-20 12:00")], date(2023, 1, 10))
    world.rebate(date(2022, 12, 28))
    world.rebate(date(2023, 1, 31))
    # Granted with December's rebate (the month the match arrived), never twice.
    assert world.rebates(idm) == [(date(2022, 11, 30), 100), (date(2023, 1, 31), 200)]
    assert world.rebate(date(2023, 2, 28)).points == 0


def test_a_line_that_came_before_its_record_matches_when_the_file_is_dropped_again(world):
    idm, number = world.card(1)
    world.seq = 40
    lines = [line(number, 41, 3_000, "2022-10-20 12:00")]
    assert world.settle("2022-10", lines, date(2022, 10, 25)).tally.unmatched == 1
    assert [r[1] for r in world.report("2022-10")[1:-2]] == [recon.LINE_KIND]
    world.pay(idm, 3_000, jst(2022, 10, 20), recorded_at=jst(2022, 10, 28))  # from an offline queue
    assert world.settle("2022-10", lines, date(2022, 11, 1)).tally.imported == 1
    assert world.report("2022-10")[1][1] == "合計"  # the line's unmatched mark went with its match
    world.rebate(date(2022, 11, 30))
    assert world.rebates(idm) == [(date(2022, 11, 30), 30)]


def test_the_reconciliation_report_is_written_with_the_months_reports_and_fresh_on_download(world, store):
    import boto3 as b3

    from chalicelib.reports.store import ReportStore

    idm, number = world.card(1)
    world.pay(idm, 4_000, jst(2022, 10, 10))
    recon_service = Reconciliation(world.ledger, world.recon, world.terminals)
    s3 = b3.client("s3", region_name=REGION)
    reports = Reports(ReportStore(store.table, s3, REPORTS, anchors_bucket=REPORTS), lambda issuer: {},
                      lambda issuer, month: recon_service.report_rows(world.ledger.issuer(issuer), month))
    written = reports.write_month("niimi", "2022-10", as_of="2022-11-01")
    assert "reconciliation" in written
    stored = s3.get_object(Bucket=REPORTS, Key=written["reconciliation"])["Body"].read()
    world.pay(idm, 1_000, jst(2022, 10, 11))  # a record late to the month
    name, body = reports.report_file("niimi", "2022-10", "reconciliation")
    assert name == "niimi-2022-10-reconciliation.csv" and body.startswith("\ufeff".encode())
    # The download is the month as it stands now, computed, not stored (the API writes no bucket).
    assert body != stored and len(body.splitlines()) == len(stored.splitlines()) + 1
    assert s3.get_object(Bucket=REPORTS, Key=written["reconciliation"])["Body"].read() == stored
    text = body.decode("utf-8-sig").splitlines()
    assert text[0] == ",".join(recon.HEADER) and "未受領" in text[-1]


def test_the_admin_api_imports_a_settlement_file_the_same_way(world, api, monkeypatch):
    import json
    import time

    from chalicelib import services

    monkeypatch.setattr(services, "importer", lambda: world.importer(now=time.monotonic))
    idm, number = world.card(1)
    seq = world.pay(idm, 8_000, jst(2022, 10, 10))
    body = "\r\n".join(["card_number,idm,card_seq,amount,paid_at,terminal_id",
                        line(number, seq, 8_000, "2022-10-10T12:00:00+09:00"),
                        line(number, 77, 100, "2022-10-11 09:00"), ""]).encode()
    world.clock.set(date(2022, 11, 10))
    path = "/api/admin/v1/issuers/niimi/imports/emoney-settlements"
    response = api.http.post(path, body=body, headers={"Content-Type": "text/csv"})
    assert response.status_code == 200, response.body
    answer = json.loads(response.body)["result"]
    assert (answer["imported"], answer["unmatched"]) == (1, 1)
    assert answer["rejections"] == [{"row": 3, "reason": recon.NO_RECORD}]
    again = json.loads(api.http.post(path, body=body, headers={"Content-Type": "text/csv"}).body)["result"]
    assert (again["imported"], again["unchanged"], again["unmatched"]) == (0, 1, 1)
    assert world.recon.received_on("niimi", "2022-10") == date(2022, 11, 10)
    world.rebate(date(2022, 11, 30))
    assert world.rebates(idm) == [(date(2022, 11, 30), 80)]


def test_the_rebate_is_floor_of_matched_uncancelled_amounts_times_their_rates(world):
    idm, number = world.card(1)
    paid = []  # (seq, amount, bps, day)
    for n, (amount, till, bps) in enumerate([(1_234, "store", 100), (5_678, "store2", 200), (999, "store", 100),
                                              (4_321, "store2", 200), (777, "store", 100), (8_888, "store2", 200)],
                                             start=1):
        paid.append((world.pay(idm, amount, jst(2022, 10, n), till=till), amount, bps, n, till))
    matched = [p for i, p in enumerate(paid) if i != 2]  # the acquirer never settled the third
    cancelled = {paid[4][0], paid[5][0]}
    world.cancel(idm, paid[4][0], date(2022, 10, 20))
    terminal = {"store": "T-STORE", "store2": "T-STORE2"}
    world.settle("2022-10", [line(number, s, a, f"2022-10-0{d} 12:00", terminal=terminal[t])
                             for s, a, _, d, t in matched], date(2022, 11, 10))
    world.cancel(idm, paid[5][0], date(2022, 11, 12), till="store2")
    world.rebate(date(2022, 11, 30))
    expected = sum(a * bps for s, a, bps, _, _ in matched if s not in cancelled) // 10_000
    assert expected == (1_234 * 100 + 5_678 * 200 + 4_321 * 200) // 10_000
    assert world.rebates(idm) == [(date(2022, 11, 30), expected)]


def test_a_cancel_that_read_the_record_before_its_match_cancels_it_as_matched(world):
    idm, number = world.card(1)
    seq = world.pay(idm, 6_000, jst(2022, 10, 5))
    stale, _ = world.terminals.store.get_txn(idm, seq)
    world.settle("2022-10", [line(number, seq, 6_000, "2022-10-05 12:00")], date(2022, 10, 25))
    # The match landed between its read and its write.
    world.terminals.store.cancel_txn(stale, "x-stale", [], book=world.terminals.rebates)
    accrual = world.terminals.rebates.accrual("niimi", "2022-10", idm)
    assert (accrual.yen, accrual.weighted) == (0, 0)
    world.rebate(date(2022, 11, 30))
    assert world.rebates(idm) == []


def test_a_match_that_read_the_record_before_its_cancel_matches_it_as_cancelled(world, monkeypatch):
    idm, number = world.card(1)
    seq = world.pay(idm, 6_000, jst(2022, 10, 5))
    stale = world.terminals.store.get_txn(idm, seq)
    world.cancel(idm, seq, date(2022, 10, 20))
    reads = []
    real_get = world.terminals.store.get_txn

    def first_read_is_stale(i, s):
        reads.append(s)
        return stale if len(reads) == 1 else real_get(i, s)

    monkeypatch.setattr(world.terminals.store, "get_txn", first_read_is_stale)
    report = world.settle("2022-10", [line(number, seq, 6_000, "2022-10-05 12:00")], date(2022, 11, 10))
    assert report.tally.imported == 1 and len(reads) == 2  # refused once, read again, matched as cancelled
    txn, _ = real_get(idm, seq)
    assert txn.cancelled and txn.reconcile == "matched"
    world.rebate(date(2022, 11, 30))
    assert world.rebates(idm) == []


def test_the_grant_rebates_schedule_emits_reconciliation_late_for_the_alarm(world, api, capsys):
    """The metric the reconciliation-late alarm watches (infra/template.json), as the
    schedule's own invocation flushes it: namespace ChiikiPoints, service and stage only."""
    from tests.integration.test_observability import emf, metric_values

    idm, _ = world.card(1)
    world.pay(idm, 5_000, jst(2022, 10, 5))
    world.clock.set(date(2022, 11, 30))
    capsys.readouterr()
    api.lambda_.invoke("grant-rebates", api.events.generate_cw_event(
        source="aws.events", detail_type="Scheduled Event", detail={}, resources=[]))
    assert metric_values(emf(capsys.readouterr().out)) == {(observability.RECONCILIATION_LATE, ()): 1}
    assert world.rebates(idm) == []
