"""CSV imports on moto (DynamoDB and S3): each kind, every rejection reported with its
row, re-imports that change nothing, runs stopped part way and continued, progress logs
without personal data, and a 30,000-row file imported in chunks."""

from __future__ import annotations

import csv
import io
import json
import time
from datetime import date, datetime, timezone

import boto3
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from chalicelib.imports import keys
from chalicelib.imports.domain import Kind, Outcome
from chalicelib.imports.service import Applied, Importer, initial_request_id
from chalicelib.imports.store import ImportFiles, RunStore
from chalicelib.ledger.domain import Actor, Op, Source
from chalicelib.ledger.keys import request_id_hash
from chalicelib.operators.grants import GrantRow, grant_list
from chalicelib.terminals.domain import TerminalStatus

IMPORTS, REPORTS = "test-imports", "test-reports"
REGION = "ap-northeast-1"
BOM = "\ufeff"
CARD_HEADER = "card_number,idm,birth_date,points,granted_on"


def card(n: int) -> tuple[str, str]:
    return f"JW{n:015d}", f"{n:016x}"


def card_line(n: int, points: int = 5000, granted_on: str = "2022-10-24", birth: str = "1980-04-01") -> str:
    number, idm = card(n)
    return f"{number},{idm},{birth},{points},{granted_on}"


def cards_csv(numbers, **kw) -> str:
    return "\n".join([CARD_HEADER, *(card_line(n, **kw) for n in numbers)]) + "\n"


def pem() -> str:
    key = Ed25519PrivateKey.generate().public_key()
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


class Ticks:
    """A monotonic clock that moves one second each time it is read: the importer
    reads it once before each row, so a deadline of now + k stops a chunk after k rows."""

    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        self.t += 1
        return self.t


class World:
    def __init__(self, ledger, terminal_service, clock) -> None:
        self.ledger, self.terminals, self.clock = ledger, terminal_service, clock
        self.s3 = boto3.client("s3", region_name=REGION)
        for bucket in (IMPORTS, REPORTS):
            self.s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
        # Versioned, as infra/template.json makes it: a file dropped again is a new version, so a new run.
        self.s3.put_bucket_versioning(Bucket=IMPORTS, VersioningConfiguration={"Status": "Enabled"})
        self.runs = RunStore(ledger.store.table)
        self.files = ImportFiles(self.s3, IMPORTS, REPORTS)
        self.ticks = Ticks()
        clock.set(date(2022, 11, 1))  # the imports happen a week after the cards' grant day

    def importer(self, **kw) -> Importer:
        kw.setdefault("now", self.ticks)
        return Importer(self.ledger, self.terminals, self.runs, self.files, **kw)

    def put(self, key: str, text: str, *, bom: bool = True) -> None:
        self.s3.put_object(Bucket=IMPORTS, Key=key, Body=((BOM if bom else "") + text).encode("utf-8"))

    def drop(self, key: str, text: str, *, bom: bool = True, importer: Importer | None = None):
        self.put(key, text, bom=bom)
        return (importer or self.importer()).handle_s3_object(IMPORTS, key)

    def result(self, key: str) -> tuple[dict[str, str], list[list[str]]]:
        raw = self.s3.get_object(Bucket=REPORTS, Key=keys.result(key))["Body"].read()
        assert raw.startswith(BOM.encode()), "the result file starts with a BOM so Excel reads UTF-8"
        lines = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"), newline="")))
        blank = lines.index([])
        summary = {line[0]: line[1] for line in lines[:blank]}
        return summary, lines[blank + 2:]  # after the blank line and the rejected rows' header

    def markers(self) -> list[str]:
        listed = self.s3.list_objects_v2(Bucket=IMPORTS, Prefix=keys.CONTINUE).get("Contents", [])
        return sorted(o["Key"] for o in listed)

    def follow(self, importer: Importer, key: str, budget: int):
        """Drop nothing: run `key` and then every continuation marker it leaves, each
        invocation with a budget of `budget` rows. Returns the reports."""
        reports = [importer.handle_s3_object(IMPORTS, key, deadline=self.ticks.t + budget + 0.5)]
        seen = set()
        while reports[-1].continued_by:
            marker = reports[-1].continued_by
            assert marker not in seen and marker in self.markers()
            seen.add(marker)
            reports.append(importer.handle_s3_object(IMPORTS, marker, deadline=self.ticks.t + budget + 0.5))
        return reports

    def snapshot(self) -> dict:
        """Everything an import can change: cards (lots, entries, totals), registry."""
        out = {}
        for idm in sorted(self.ledger.store.card_ids()):
            c = self.ledger.card(idm)
            history = self.ledger.history(idm, limit=100).entries
            out[idm] = (c.card_number, c.status, c.seq, c.head, c.lots, self.ledger.totals(idm),
                        [(e.kind, e.request) for e in history])
        out["merchants"] = sorted(self.terminals.merchants("niimi"), key=lambda m: m.merchant_id)
        return out


@pytest.fixture
def world(ledger, terminal_service, clock) -> World:
    return World(ledger, terminal_service, clock)


# -- each kind ----------------------------------------------------------------------------


def test_cards_are_opened_with_their_birth_date_and_get_their_initial_grant(world):
    report = world.drop("niimi/cards/batch-1.csv", cards_csv([1, 2, 3]))
    assert report.complete and (report.tally.imported, report.tally.points) == (3, 15_000)
    for n in (1, 2, 3):
        number, idm = card(n)
        stored = world.ledger.store.get_card(idm)
        assert (stored.card.card_number, stored.card.issuer, stored.birth_date) == (number, "niimi", "1980-04-01")
        (lot,) = stored.card.lots
        assert (lot.amount, lot.source, lot.valid_from, lot.expires_on) == (
            5000, Source.INITIAL, date(2022, 10, 24), date(2023, 4, 23))
        entry = world.ledger.history(idm).entries[0]
        assert entry.actor == Actor("operator", f"import:s3://{IMPORTS}/niimi/cards/batch-1.csv")
    assert world.ledger.store.get_request(request_id_hash(initial_request_id("niimi", card(1)[1])))
    summary, rejected = world.result("niimi/cards/batch-1.csv")
    assert (summary["status"], summary["imported"], summary["rejected"], rejected) == ("complete", "3", "0", [])


def test_a_file_without_bom_and_with_japanese_headers_and_full_width_digits_imports_the_same(world):
    wide = card(1)[0].translate({c: c + 0xFEE0 for c in range(0x21, 0x7F)})  # ＪＷ０００…１
    text = "カード番号,IDm,生年月日,付与ポイント,付与日\n" \
           f"{wide},000000000000000A,1980/4/1,\"5,000\",2022年10月24日\n"
    report = world.drop("niimi/cards/japanese.csv", text, bom=False)
    assert (report.tally.imported, report.tally.rejected) == (1, 0)
    stored = world.ledger.store.get_card("000000000000000a")
    assert (stored.card.card_number, stored.birth_date, stored.card.lots[0].amount) == (
        "JW000000000000001", "1980-04-01", 5000)


def test_merchants_keep_japanese_text_as_written_and_it_round_trips_in_the_result(world):
    text = ("加盟店ID,加盟店名,地区,業種,還元率(bps)\n"
            "m-001,にーみん商店（本店）,新見駅前,食料品,150\n"
            "m-002,ｶﾌｪ・ド・新見,哲西町,飲食,\n"
            "m-003,名前だけ店,,雑貨,\n")
    report = world.drop("niimi/merchants/2026-04.csv", text)
    assert (report.tally.imported, report.tally.rejected) == (2, 1)
    merchants = {m.merchant_id: m for m in world.terminals.merchants("niimi")}
    assert (merchants["m-001"].name, merchants["m-001"].area, merchants["m-001"].rebate_bps) == (
        "にーみん商店（本店）", "新見駅前", 150)
    assert (merchants["m-002"].name, merchants["m-002"].rebate_bps) == ("ｶﾌｪ・ド・新見", None)
    _, rejected = world.result("niimi/merchants/2026-04.csv")
    assert rejected == [["4", "the area is empty", "m-003", "名前だけ店", "", "雑貨", ""]]


def test_terminals_are_registered_and_unknown_merchants_bad_keys_and_modes_rejected(world):
    world.drop("niimi/merchants/m.csv", "merchant_id,name,area,category\nm-001,店,駅前,食料品\n")
    world.drop("niimi/events/e.csv", "event_id,name,points,opens_at,closes_at\nev-1,清掃,200,2026-05-03,2026-05-03\n")
    good, other = pem(), pem()
    rows = [
        ("t-001", "store", "m-001", "", good),
        ("t-002", "店舗", "m-404", "", other),
        ("t-003", "store", "m-001", "", "-----BEGIN PUBLIC KEY-----\nnot a key\n-----END PUBLIC KEY-----"),
        ("t-004", "event", "", "ev-1", other),
        ("t-005", "charger", "", "", other.replace("\n", "\\n")),  # a one-line PEM with \n escapes
        ("t-006", "kiosk", "m-001", "", other),
        ("t-007", "event", "", "ev-404", other),
        ("t-008", "store", "m-001", "", "ssh-ed25519 AAAA"),
    ]
    buffer = io.StringIO()
    csv.writer(buffer).writerows([("terminal_id", "mode", "merchant_id", "event_id", "public_key"), *rows])
    report = world.drop("niimi/terminals/t.csv", buffer.getvalue())
    assert report.tally.imported == 3
    t1 = world.terminals.store.get_terminal("t-001")
    assert (t1.merchant_id, t1.public_key.strip(), t1.status) == ("m-001", good.strip(), TerminalStatus.ACTIVE)
    assert world.terminals.store.get_terminal("t-004").event_id == "ev-1"
    assert world.terminals.store.get_terminal("t-005").public_key.strip() == other.strip()
    _, rejected = world.result("niimi/terminals/t.csv")
    reasons = {int(r[0]): r[1] for r in rejected}
    assert reasons == {
        3: "no merchant m-404 of this issuer (import the merchants first)",
        4: "the public key is not a PEM public key",
        7: "the mode must be store, charger or event (店舗, チャージ, イベント)",
        8: "no event ev-404 of this issuer (import the events first)",
        9: "the public key is not a PEM public key (-----BEGIN PUBLIC KEY----- ...)",
    }


def test_a_reimported_terminal_file_does_not_reactivate_a_disabled_terminal(world):
    world.drop("niimi/merchants/m.csv", "merchant_id,name,area,category\nm-001,店,駅前,食料品\n")
    text = f'terminal_id,mode,merchant_id,public_key\nt-001,store,m-001,"{pem()}"\n'
    world.drop("niimi/terminals/t.csv", text)
    world.terminals.set_terminal_status("t-001", TerminalStatus.DISABLED)
    report = world.drop("niimi/terminals/t-again.csv", text)
    assert (report.tally.unchanged, report.tally.imported) == (1, 0)
    assert world.terminals.store.get_terminal("t-001").status is TerminalStatus.DISABLED
    another_key = world.drop("niimi/terminals/t-rotated.csv", text.replace(text.split('"')[1], pem()))
    assert another_key.rejections[0].reason.startswith("terminal t-001 is already registered with another key")


def test_events_read_local_times_in_the_issuers_time_zone(world):
    text = ("イベントID,イベント名,ポイント,開始日時,終了日時,有効月数\n"
            "ev-1,新見市清掃ボランティア,200,2026-05-03 09:00,2026-05-03 12:00,3\n"
            "ev-2,健康ウォーク,500,2026-05-05,2026-05-05,\n"
            "ev-3,逆さま,500,2026-05-05 12:00,2026-05-05 09:00,\n"
            "ev-4,期間なし,500,5月5日,2026-05-05,\n")
    report = world.drop("niimi/events/2026-05.csv", text)
    assert (report.tally.imported, report.tally.rejected) == (2, 2)
    ev1, ev2 = world.terminals.store.get_event("ev-1"), world.terminals.store.get_event("ev-2")
    assert (ev1.name, ev1.points, ev1.validity_months) == ("新見市清掃ボランティア", 200, 3)
    assert ev1.opens_at == datetime(2026, 5, 3, 0, 0, tzinfo=timezone.utc)  # 09:00 JST
    assert (ev2.opens_at, ev2.closes_at) == (datetime(2026, 5, 4, 15, tzinfo=timezone.utc),
                                             datetime(2026, 5, 5, 15, tzinfo=timezone.utc))
    assert [(r.row, r.reason) for r in report.rejections] == [
        (4, "the event closes before it opens"),
        (5, "the opening time is not a date and time (write YYYY-MM-DD HH:MM, or YYYY-MM-DD)"),
    ]


def test_admin_grants_are_once_per_list_and_card_shared_with_the_admin_grant_list(world):
    world.drop("niimi/cards/c.csv", cards_csv([1, 2, 3]))
    world.ledger.open_card(idm="00000000000000ff", card_number="JW000000000000255", issuer_id="okayama")
    ops = Actor("operator", "arn:aws:iam::123456789012:user/ops")
    grant_list(world.ledger, "niimi", "walk-2026", [GrantRow(card(3)[0], 500)], reason="健康ウォーク", actor=ops)
    text = ("list_id,card_number,points,reason\n"
            f"volunteer-1,{card(1)[0]},200,清掃ボランティア\n"
            f"volunteer-1,{card(2)[0]},200,清掃ボランティア\n"
            f"walk-2026,{card(3)[0]},500,健康ウォーク\n"
            "volunteer-1,JW999999999999999,200,清掃ボランティア\n"
            f"volunteer-1,{card(1)[0]},200,二重\n"
            "volunteer-1,JW000000000000255,200,他の市\n"
            f"volunteer-1,{card(3)[0]},2.5,端数\n"
            f"walk-2026,{card(3)[0].replace('JW', 'XX')},500,健康ウォーク\n")
    report = world.drop("niimi/admin-grants/2026-05.csv", text)
    assert (report.tally.imported, report.tally.unchanged, report.tally.points) == (2, 1, 400)
    assert [world.ledger.balance(card(n)[1]).balance for n in (1, 2, 3)] == [5200, 5200, 5500]
    entry = world.ledger.history(card(1)[1]).entries[0]
    assert (entry.reason, entry.result["source"]) == ("清掃ボランティア", "admin")
    assert [(r.row, r.reason) for r in report.rejections] == [
        (5, "no card with this card number"),
        (6, "the same list id and card number is already on row 2 of this file"),
        (7, "the card belongs to another issuer"),
        (8, "the points must be a whole number, not '2.5'"),
        (9, "the card number must be JW followed by 15 digits (17 characters)"),
    ]


def test_a_list_imported_then_sent_to_the_admin_grant_list_is_reported_already_granted_by_both(world):
    world.drop("niimi/cards/c.csv", cards_csv([1, 2]))
    text = ("list_id,card_number,points,reason\n"
            f"volunteer-1,{card(1)[0]},200,清掃ボランティア\n"
            f"volunteer-1,{card(2)[0]},200,清掃ボランティア\n")
    assert world.drop("niimi/admin-grants/a.csv", text).tally.imported == 2
    ops = Actor("operator", "arn:aws:iam::123456789012:user/ops")  # another actor than the import's
    sent = grant_list(world.ledger, "niimi", "volunteer-1", [GrantRow(card(1)[0], 200), GrantRow(card(2)[0], 300)],
                      reason="清掃ボランティア", actor=ops)
    assert (sent.granted, sent.points, sent.already_granted) == (0, 0, 1)
    refused = "list volunteer-1 already granted this card 200 points; nothing was changed"
    assert sent.rejected == [(2, refused)]
    again = world.drop("niimi/admin-grants/b.csv", text.replace(f"{card(2)[0]},200", f"{card(2)[0]},300"))
    assert (again.tally.imported, again.tally.unchanged, again.tally.points) == (0, 1, 0)
    assert [(r.row, r.reason) for r in again.rejections] == [(3, refused)]
    assert [world.ledger.balance(card(n)[1]).balance for n in (1, 2)] == [5200, 5200]


# -- rejections --------------------------------------------------------------------------


def test_every_card_row_problem_is_reported_with_its_row_number_and_the_rest_imported(world):
    world.ledger.open_card(idm=card(90)[1], card_number=card(90)[0], issuer_id="okayama")
    lines = [
        CARD_HEADER,
        card_line(1),                                          # row 2: fine
        "JW12345,0000000000000002,1980-04-01,5000,2022-10-24",  # bad card number
        f"{card(3)[0]},00000000000000zz,1980-04-01,5000,2022-10-24",  # bad IDm
        card_line(4, birth="1980-02-30"),                      # bad date
        card_line(5, granted_on="24/10/2022"),                 # bad date
        card_line(6, points="5000pt"),                         # not a whole number
        card_line(7, points=0),                                # zero
        card_line(1).replace(card(1)[1], card(8)[1]),          # the same card number as row 2
        card_line(9).replace(card(9)[0], card(10)[0]) + ",extra",  # more cells than the header
        "",                                                    # blank: skipped
        card_line(90),                                         # another issuer's card
        card_line(11, granted_on="2022-01-04"),                # already expired (valid to 2022-07-03)
        card_line(12),                                         # fine
    ]
    report = world.drop("niimi/cards/mixed.csv", "\n".join(lines) + "\n")
    assert (report.tally.imported, report.tally.rejected, report.tally.blank) == (2, 10, 1)
    summary, rejected = world.result("niimi/cards/mixed.csv")
    assert (summary["rows"], summary["imported"], summary["rejected"], summary["blank rows skipped"]) == (
        "12", "2", "10", "1")
    assert [(int(r[0]), r[1]) for r in rejected] == [
        (3, "the card number must be JW followed by 15 digits (17 characters)"),
        (4, "the IDm must be 16 hexadecimal digits (0-9, a-f)"),
        (5, "the birth date is not a date (write YYYY-MM-DD)"),
        (6, "the grant date is not a date (write YYYY-MM-DD)"),
        (7, "the initial points must be a whole number, not '5000pt'"),
        (8, "the initial points must be above zero"),
        (9, "the same card number is already on row 2 of this file"),
        (10, "the row has 6 cells but the header has 5"),
        (12, "the card belongs to another issuer"),
        (13, "an initial grant on 2022-01-04 would already have expired (2022-07-03)"),
    ]
    assert rejected[0][2:] == ["JW12345", "0000000000000002", "1980-04-01", "5000", "2022-10-24"]
    assert sorted(world.ledger.store.card_ids()) == sorted([card(1)[1], card(12)[1], card(90)[1]])


def test_a_card_already_known_under_another_number_or_idm_is_rejected(world):
    world.drop("niimi/cards/a.csv", cards_csv([1]))
    number, idm = card(1)
    text = "\n".join([CARD_HEADER, f"{number},{card(2)[1]},1980-04-01,5000,2022-10-24",
                      f"{card(3)[0]},{idm},1980-04-01,5000,2022-10-24"]) + "\n"
    report = world.drop("niimi/cards/b.csv", text)
    assert [(r.row, r.reason) for r in report.rejections] == [
        (2, "the card number is already registered with another IDm"),
        (3, "the IDm is already registered with another card number"),
    ]
    report = world.drop("niimi/cards/c.csv", cards_csv([1], birth="1990-01-01"))
    assert [(r.row, r.reason) for r in report.rejections] == [
        (2, "the card was imported before with another birth date; correct it through the admin API")]
    assert sorted(world.ledger.store.card_ids()) == [idm]


@pytest.mark.parametrize(("key", "body", "reason"), [
    ("niimi/cards/sjis.csv", "カード番号,IDm\n".encode("shift_jis"), "the file is not UTF-8 text"),
    ("niimi/cards/short.csv", b"card_number,idm,points\n", "missing column(s) birth_date, granted_on"),
    ("niimi/cards/typo.csv", b"card_number,idm,birth_date,point,granted_on\n", "unknown column(s) point"),
    ("niimi/stores/x.csv", b"a\n", "no import kind 'stores'"),
    ("nowhere/cards/x.csv", CARD_HEADER.encode() + b"\n", "no issuer 'nowhere'"),
    ("cards.csv", b"a\n", "drop import files at <issuer>/<kind>/<name>.csv"),
    ("niimi/cards/empty.csv", b"", "the file is empty"),
])
def test_a_file_that_cannot_be_read_is_refused_whole_with_the_reason(world, key, body, reason):
    world.s3.put_object(Bucket=IMPORTS, Key=key, Body=body)
    report = world.importer().handle_s3_object(IMPORTS, key)
    assert report.refused.startswith(reason)
    summary, rejected = world.result(key)
    assert summary["status"].startswith("refused: " + reason)
    assert list(world.ledger.store.card_ids()) == []


# -- exactly once ------------------------------------------------------------------------


def test_importing_the_same_file_twice_changes_nothing(world):
    text = cards_csv(range(1, 6)) + "JW1,bad,1980-04-01,1,2022-10-24\n"
    world.drop("niimi/merchants/m.csv", "merchant_id,name,area,category\nm-001,店,駅前,食料品\n")
    first = world.drop("niimi/cards/c.csv", text)
    before = world.snapshot()
    again = world.drop("niimi/cards/c.csv", text)  # the same key again: a new version, a new run
    copy = world.drop("niimi/cards/c-copy.csv", text)
    merchants_again = world.drop("niimi/merchants/m2.csv", "merchant_id,name,area,category\nm-001,店,駅前,食料品\n")
    assert world.snapshot() == before
    assert (first.tally.imported, first.tally.points) == (5, 25_000)
    for report in (again, copy):
        assert (report.tally.imported, report.tally.unchanged, report.tally.rejected, report.tally.points) == (
            0, 5, 1, 0)
    assert merchants_again.tally.unchanged == 1
    summary, _ = world.result("niimi/cards/c.csv")
    assert summary["unchanged (already imported)"] == "5"


def test_a_duplicate_notification_of_a_finished_run_only_rewrites_its_result(world):
    world.drop("niimi/cards/c.csv", cards_csv([1, 2]))
    before = world.snapshot()
    report = world.importer().handle_s3_object(IMPORTS, "niimi/cards/c.csv")  # S3 delivered it twice
    assert report.complete and report.tally.imported == 2  # the run's own figures, not redone
    assert world.snapshot() == before


def test_another_file_with_the_same_card_never_grants_its_initial_points_twice(world):
    world.drop("niimi/cards/a.csv", cards_csv([1]))
    report = world.drop("niimi/cards/b.csv", cards_csv([1], points=3000))
    assert [(r.row, r.reason) for r in report.rejections] == [
        (2, "the card already had its initial grant (5000 points from 2022-10-24); nothing was changed")]
    assert world.ledger.totals(card(1)[1])[Op.GRANT] == 5000


def test_a_run_stopped_after_k_rows_and_continued_ends_as_an_uninterrupted_one(world):
    def text(offset: int) -> str:  # the same file, for other cards: 23 rows, some refused
        lines = [CARD_HEADER]
        for n in range(1, 24):
            lines.append("JW1,bad,1980-04-01,1,2022-10-24" if n % 7 == 0 else card_line(offset + n, points=1000 + n))
        return "\n".join(lines) + "\n"

    whole = world.drop("niimi/cards/whole.csv", text(0))
    importer = world.importer(checkpoint_every=4)
    world.put("niimi/cards/chunked.csv", text(100))
    reports = world.follow(importer, "niimi/cards/chunked.csv", budget=5)
    assert len(reports) == 5 and [r.complete for r in reports] == [False] * 4 + [True]
    assert len(world.markers()) == 4
    last = reports[-1]
    assert last.tally == whole.tally
    assert [(r.row, r.reason) for r in last.rejections] == [(r.row, r.reason) for r in whole.rejections]
    for n in range(1, 24):
        if n % 7 == 0:
            continue
        a, b = world.ledger.card(card(n)[1]), world.ledger.card(card(100 + n)[1])
        assert [(x.amount, x.remaining, x.valid_from, x.expires_on) for x in a.lots] == [
            (x.amount, x.remaining, x.valid_from, x.expires_on) for x in b.lots]
        assert (a.seq, b.seq) == (1, 1)
    summary, rejected = world.result("niimi/cards/chunked.csv")
    assert summary["status"] == "complete" and len(rejected) == 3


def test_an_invocation_that_dies_between_checkpoints_is_redone_without_granting_twice(world):
    calls = []

    def dies_at_row_7(record, ctx):
        calls.append(record.card_number)
        if len(calls) == 6:
            raise RuntimeError("the Lambda ran out of time")
        return real._card(record, ctx)

    real = world.importer()
    importer = world.importer(checkpoint_every=4, appliers={Kind.CARDS: dies_at_row_7})
    world.put("niimi/cards/c.csv", cards_csv(range(1, 11)))
    with pytest.raises(RuntimeError):
        importer.handle_s3_object(IMPORTS, "niimi/cards/c.csv")  # rows 2-6 done, checkpoint after 4 rows
    report = importer.handle_s3_object(IMPORTS, "niimi/cards/c.csv")  # Lambda's retry
    # The retry starts at the checkpoint (card 5), not at the top; card 5, done after the
    # checkpoint, is found done (unchanged) rather than granted again.
    assert calls[6] == card(5)[0]
    assert report.complete and (report.tally.imported, report.tally.unchanged) == (9, 1)
    assert all(world.ledger.card(card(n)[1]).seq == 1 for n in range(1, 11))


def test_a_continuation_goes_on_with_the_version_it_started_even_if_the_file_was_replaced(world):
    importer = world.importer()
    world.put("niimi/cards/c.csv", cards_csv(range(1, 6)))
    first = importer.handle_s3_object(IMPORTS, "niimi/cards/c.csv", deadline=world.ticks.t + 2.5)
    assert first.tally.imported == 2
    world.put("niimi/cards/c.csv", cards_csv(range(1, 4)))
    assert importer.handle_s3_object(IMPORTS, first.continued_by).tally.imported == 5
    assert importer.handle_s3_object(IMPORTS, "niimi/cards/c.csv").tally.unchanged == 3  # the new version's run
    assert len(list(world.ledger.store.card_ids())) == 5


def test_without_versioning_a_continuation_for_a_replaced_file_stops(world):
    world.s3.put_bucket_versioning(Bucket=IMPORTS, VersioningConfiguration={"Status": "Suspended"})
    importer = world.importer()
    world.put("niimi/cards/c.csv", cards_csv(range(1, 6)))
    first = importer.handle_s3_object(IMPORTS, "niimi/cards/c.csv", deadline=world.ticks.t + 2.5)
    world.put("niimi/cards/c.csv", cards_csv(range(1, 4)))
    assert importer.handle_s3_object(IMPORTS, first.continued_by) is None
    assert len(list(world.ledger.store.card_ids())) == 2


# -- logs ----------------------------------------------------------------------------------


def test_progress_logs_carry_counts_and_rate_but_no_personal_data(world, log_lines):
    importer = world.importer(checkpoint_every=5, progress_every=5)
    bad_row = "JW000000000000999,x,1975-12-31,1,2022-10-24\n"
    world.put("niimi/cards/c.csv", cards_csv(range(1, 31), birth="1975-12-31") + bad_row)
    world.follow(importer, "niimi/cards/c.csv", budget=20)
    lines = log_lines()
    progress = [line for line in lines if line["message"] == "import progress"]
    ended = [line for line in lines if line["message"] == "import chunk ended"]
    assert [p["rows_done"] for p in progress] == [5, 10, 15, 20, 25, 30]
    assert [e["rows_done"] for e in ended] == [20, 31]
    assert all(p["rows_total"] == 31 and p["rows_per_second"] > 0 for p in progress + ended)
    finished = [line for line in lines if line["message"] == "import finished"]
    assert finished[0]["imported"] == 30 and finished[0]["rejected"] == 1
    text = json.dumps(lines, ensure_ascii=False)
    for n in range(1, 31):
        number, idm = card(n)
        assert number not in text and idm not in text and idm[-8:] not in text
    assert "1975-12-31" not in text and "JW000000000000999" not in text
    assert "IDm must be" not in text  # no rejection reason either


# -- a large file --------------------------------------------------------------------------


def test_a_30000_card_file_is_imported_in_chunks_each_row_once(world):
    """The chunking itself, without the ledger's cost: a stand-in applier counts the rows;
    the cursor, checkpoints, markers and result file are the real ones (moto)."""
    applied: list[int] = []

    def count(record, ctx):
        applied.append(int(record.card_number[2:]))
        return Applied(Outcome.IMPORTED, points=record.points)

    importer = world.importer(appliers={Kind.CARDS: count}, checkpoint_every=1_000, progress_every=10_000)
    world.put("niimi/cards/30000.csv", cards_csv(range(1, 30_001)))
    reports = world.follow(importer, "niimi/cards/30000.csv", budget=7_000)
    assert len(reports) == 5 and reports[-1].complete
    assert applied == list(range(1, 30_001))  # in order, each once
    assert reports[-1].tally.imported == 30_000 and reports[-1].tally.points == 150_000_000
    summary, rejected = world.result("niimi/cards/30000.csv")
    assert (summary["status"], summary["imported"], rejected) == ("complete", "30000", [])


# -- the admin API ----------------------------------------------------------------------------


@pytest.fixture
def admin_api(world, monkeypatch):
    from chalice.test import Client

    from app import app
    from chalicelib import services

    monkeypatch.setattr(services, "importer", lambda: world.importer(now=time.monotonic))
    with Client(app) as client:
        yield client


def test_the_admin_api_imports_a_posted_file_and_answers_with_the_result(world, admin_api):
    body = (BOM + cards_csv([1, 2]) + "JW1,x,1980-04-01,1,2022-10-24\n").encode()
    response = admin_api.http.post("/api/admin/v1/issuers/niimi/imports/cards", body=body,
                                   headers={"Content-Type": "text/csv"})
    assert response.status_code == 200
    answer = json.loads(response.body)
    assert answer["result"]["imported"] == 2 and answer["result"]["rejections"] == [
        {"row": 4, "reason": "the card number must be JW followed by 15 digits (17 characters)"}]
    assert answer["csv"].splitlines()[0] == "file,admin API (cards)"
    entry = world.ledger.history(card(1)[1]).entries[0]
    assert entry.actor.kind == "operator"
    again = admin_api.http.post("/api/admin/v1/issuers/niimi/imports/cards", body=body,
                                headers={"Content-Type": "text/csv", "Accept": "text/csv"})
    assert again.status_code == 200 and again.body.decode().startswith(BOM + "file,admin API (cards)")
    assert "unchanged (already imported),2" in again.body.decode()


def test_the_admin_api_refuses_what_it_cannot_import(world, admin_api):
    post = lambda path, body: admin_api.http.post(path, body=body, headers={"Content-Type": "text/csv"})  # noqa: E731
    too_big = post("/api/admin/v1/issuers/niimi/imports/cards", cards_csv(range(1, 1_002)).encode())
    assert json.loads(too_big.body).get("code") == "import_too_large", too_big.body[:300]
    assert json.loads(post("/api/admin/v1/issuers/niimi/imports/stores", b"a\n").body)["code"] == "unknown_import_kind"
    assert post("/api/admin/v1/issuers/nowhere/imports/cards", cards_csv([1]).encode()).status_code == 404
    missing = post("/api/admin/v1/issuers/niimi/imports/cards", b"card_number\n")
    assert missing.status_code == 400 and json.loads(missing.body)["code"] == "import_refused"
    assert list(world.ledger.store.card_ids()) == []


# -- the run store: the same contract in DynamoDB and in memory ----------------------------


@pytest.fixture(params=["dynamodb", "memory"])
def runs(request, store):
    from chalicelib.imports.store import MemoryRunStore

    return RunStore(store.table) if request.param == "dynamodb" else MemoryRunStore()


def test_a_checkpoint_moves_a_run_only_from_where_it_was(runs):
    from chalicelib.imports.domain import Rejection, RunState, Status, Tally
    from chalicelib.imports.errors import RunSuperseded

    start, first = RunState(), RunState(100, Tally(imported=99, rejected=1))
    runs.checkpoint("r", "k", start, first, [Rejection(7, "why", ("a", "名前"))])
    with pytest.raises(RunSuperseded):  # a second invocation that started at the top
        runs.checkpoint("r", "k", start, RunState(100, Tally(imported=100)), [])
    done = RunState(150, Tally(imported=148, rejected=2), Status.DONE)
    runs.checkpoint("r", "k", first, done, [Rejection(120, "other", ("b",))])
    with pytest.raises(RunSuperseded):
        runs.checkpoint("r", "k", first, done, [])
    assert runs.load("r") == done and runs.load("other") is None
    assert runs.rejections("r") == [Rejection(7, "why", ("a", "名前")), Rejection(120, "other", ("b",))]


def test_the_apps_import_function_imports_what_the_bucket_notifies(world, monkeypatch):
    """app.py's `import-csv` (what the bucket's notification invokes, infra/) reaches the importer."""
    from chalice.test import Client

    from app import app
    from chalicelib import services

    monkeypatch.setattr(services, "importer", lambda: world.importer())
    world.put("niimi/cards/notified.csv", cards_csv([7, 8]))
    event = {"Records": [{"eventName": "ObjectCreated:Put",
                          "s3": {"bucket": {"name": IMPORTS}, "object": {"key": "niimi/cards/notified.csv"}}}]}
    with Client(app) as client:
        client.lambda_.invoke("import-csv", event)
    assert [world.ledger.balance(card(n)[1]).balance for n in (7, 8)] == [5000, 5000]
    summary, rejected = world.result("niimi/cards/notified.csv")
    assert (summary["status"], summary["imported"], rejected) == ("complete", "2", [])
