"""Operator reports (§10) on moto: a realistic mix of changes across month boundaries,
then every report's figures recomputed independently from the entries (walking every
card's chain) and from the cards' lots; the CSV as Excel needs it; and a cost that
follows months and merchants, not entries. The `ledger` fixture checks the ledger
invariants after each test."""

from __future__ import annotations

import csv
import io
from collections import Counter, defaultdict
from datetime import date, datetime

import boto3
import pytest

from chalicelib.job_progress import JobState
from chalicelib.jobs.expiry import run_expiry
from chalicelib.ledger import keys as ledger_keys
from chalicelib.ledger.domain import Actor, CardStatus, Op, Source
from chalicelib.reports import keys
from chalicelib.reports.service import Reports, run_monthly_reports
from chalicelib.reports.store import ReportStore
from chalicelib.terminals.domain import Merchant
from chalicelib.terminals.store import TerminalStore
from tests.conftest import JST

BUCKET = "test-reports"
OPERATOR = Actor("operator", "ops")
MERCHANTS = {
    "M-1": "にーみん食堂",
    "M-2": 'カフェ "森の家", 本店',  # a quote and a comma: the CSV must quote them
    "M-3": "新見ストア",
}
CAMPAIGNS = ("マイナポイント ICOCA チャージ", "夏のチャージキャンペーン")


def till(merchant: str) -> Actor:
    return Actor("terminal", f"T-{merchant}", merchant=merchant)


@pytest.fixture
def s3(store):
    client = boto3.client("s3", region_name="ap-northeast-1")
    client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "ap-northeast-1"})
    return client


@pytest.fixture
def reports(store, s3) -> Reports:
    directory = TerminalStore(store.table)
    for mid, name in MERCHANTS.items():
        directory.put_merchant(Merchant(mid, "niimi", name, "新見", "小売"))
    directory.put_merchant(Merchant("OK-1", "okayama", "岡山の店", "岡山", "小売"))
    return Reports(
        ReportStore(store.table, s3, BUCKET, anchors_bucket=BUCKET),  # no anchors here
        lambda issuer: {m.merchant_id: m.name for m in directory.merchants(issuer)},
    )


class Mix:
    """Drives changes through the ledger with unique request ids."""

    def __init__(self, ledger, clock) -> None:
        self.ledger, self.clock, self.n = ledger, clock, 0

    def rid(self, what: str) -> str:
        self.n += 1
        return f"{what}:{self.n}"

    def at(self, when: date | datetime) -> Mix:
        self.clock.set(when)
        return self

    def card(self, n: int, issuer: str = "niimi") -> str:
        idm = f"{'0a' if issuer == 'niimi' else '0b'}{n:014x}"
        number = n if issuer == "niimi" else 10**9 + n
        self.ledger.open_card(idm=idm, card_number=f"JW{number:015d}", issuer_id=issuer)
        return idm

    def grant(self, idm: str, amount: int, source: Source, reason: str | None = None, **kw) -> dict:
        return self.ledger.grant(idm, amount, request_id=self.rid("grant"), actor=OPERATOR, source=source,
                                 reason=reason, **kw)

    def spend(self, idm: str, amount: int, merchant: str, **kw) -> str:
        rid = self.rid("pay")
        self.ledger.spend(idm, amount, request_id=rid, actor=till(merchant), **kw)
        return rid

    def cancel(self, idm: str, payment: str, merchant: str) -> dict:
        return self.ledger.cancel_spend(idm, spend_request_id=payment, request_id=self.rid("cancel"),
                                        actor=till(merchant))


def drive_mix(ledger, clock, cards: int = 6) -> list[str]:
    """Grants of every source, payments at three merchants, cancels (one after its lot
    expired), the expiry job, a void, a return, a damage reissue, and an Okayama card,
    over October 2022 - April 2023. Returns the Niimi cards."""
    mix = Mix(ledger, clock)
    idms = [mix.card(i) for i in range(1, cards + 1)]
    other = mix.card(1, "okayama")

    mix.at(date(2022, 10, 24))
    for idm in idms:
        mix.grant(idm, 5000, Source.INITIAL)  # last valid day 2023-04-23
    mix.grant(other, 3000, Source.INITIAL)
    ledger.spend(other, 100, request_id="ok-pay", actor=till("OK-1"))

    mix.at(date(2022, 10, 27))
    pay_a = mix.spend(idms[0], 1200, "M-1")
    mix.spend(idms[1], 800, "M-2")
    mix.spend(idms[2], 50, "M-3")
    # 23:59:59 JST on 31 October belongs to October; the cancel a second later to November.
    late = mix.at(datetime(2022, 10, 31, 23, 59, 59, tzinfo=JST)).spend(idms[3], 700, "M-2")
    mix.at(datetime(2022, 11, 1, 0, 0, 0, tzinfo=JST)).cancel(idms[3], late, "M-2")

    mix.at(date(2022, 11, 2))
    mix.cancel(idms[0], pay_a, "M-1")
    mix.grant(idms[0], 300, Source.EVENT, reason="新見ふるさと祭り")
    mix.grant(idms[1], 200, Source.ADMIN, reason="ボランティア")
    mix.grant(idms[2], 500, Source.ADMIN, reason="健康ウォーク")
    mix.at(date(2022, 11, 30))
    for idm in idms[:4]:
        mix.grant(idm, 123, Source.REBATE)  # last valid day 2023-05-29
    mix.at(date(2022, 11, 18))
    mix.grant(idms[4], 5000, Source.CAMPAIGN, reason=CAMPAIGNS[0], validity_months=3)
    mix.grant(idms[5], 1250, Source.CAMPAIGN, reason=CAMPAIGNS[0], validity_months=3)

    mix.at(date(2022, 12, 5))
    mix.spend(idms[0], 5200, "M-1")  # takes the whole initial lot and part of the event lot
    mix.spend(idms[4], 9000, "M-3")
    mix.grant(idms[5], 777, Source.CAMPAIGN, reason=CAMPAIGNS[1])
    mix.at(date(2022, 12, 20))
    ledger.void(idms[1], request_id=mix.rid("void"), actor=OPERATOR, reason="other")
    ledger.void(idms[2], request_id=mix.rid("return"), actor=OPERATOR, reason="moving",
                close_as=CardStatus.RETURNED)
    replacement = mix.card(cards + 1)
    ledger.transfer(idms[5], replacement, request_id=mix.rid("reissue"), actor=OPERATOR, reason="damage")
    idms.append(replacement)

    mix.at(date(2023, 2, 19))
    mix.spend(replacement, 100, "M-2")  # the campaign lot moved with its expiry (2023-02-17) is past

    mix.at(date(2023, 4, 20))
    pay_late = mix.spend(idms[3], 3000, "M-1")  # from the initial lot (last valid day 2023-04-23)
    mix.at(date(2023, 4, 24))
    run_expiry(ledger, "niimi", on=date(2023, 4, 24), since=date(2022, 10, 24), state=JobState())
    mix.at(date(2023, 4, 25))
    mix.cancel(idms[3], pay_late, "M-1")  # its lot is past: the points are recorded as expired
    mix.spend(idms[0], 50, "M-3")
    return idms


# --- the figures, recomputed independently ----------------------------------------------


def all_entries(ledger, issuer: str):
    for idm in ledger.store.card_ids():
        if ledger.card(idm).issuer != issuer:
            continue
        yield from (s.entry for s in ledger.store.entries(idm, newest_first=False))


def month(day: date) -> str:
    return day.strftime("%Y-%m")


def expected(ledger, issuer: str = "niimi") -> dict:
    settlement: dict = defaultdict(lambda: defaultdict(Counter))
    by_month: dict = defaultdict(Counter)
    campaigns: dict = defaultdict(Counter)
    outstanding: Counter = Counter()
    for e in all_entries(ledger, issuer):
        m = month(e.day)
        for mv in e.movements:
            by_month[m][mv.op] += mv.amount
            sign = 1 if mv.op in (Op.GRANT, Op.CANCEL, Op.TRANSFER_IN) else -1
            outstanding[month(mv.expires_on)] += sign * mv.amount
            if mv.op in (Op.SPEND, Op.CANCEL):
                settlement[m][e.actor.merchant][mv.op] += mv.amount
            if mv.op is Op.GRANT:
                by_month[m][e.result["source"]] += mv.amount
                if e.result["source"] == "campaign":
                    campaigns[m][e.reason] += mv.amount
    return {"settlement": settlement, "by_month": by_month, "campaigns": campaigns,
            "outstanding": +outstanding}


def lots_outstanding(ledger, issuer: str = "niimi") -> Counter:
    found: Counter = Counter()
    for idm in ledger.store.card_ids():
        card = ledger.card(idm)
        if card.issuer == issuer:
            for lot in card.lots:
                found[month(lot.expires_on)] += lot.remaining
    return +found


def read_csv(s3, key: str) -> list[list[str]]:
    raw = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    assert raw.startswith(b"\xef\xbb\xbf"), "Excel needs the UTF-8 byte order mark"
    assert b"\r\n" in raw
    return list(csv.reader(io.StringIO(raw.decode("utf-8-sig"), newline="")))


MONTHS = ("2022-10", "2022-11", "2022-12", "2023-01", "2023-02", "2023-04")


def test_every_report_agrees_exactly_with_the_entries(ledger, clock, reports, s3):
    drive_mix(ledger, clock)
    want = expected(ledger)
    assert set(want["settlement"]) >= {"2022-10", "2022-11", "2022-12", "2023-02", "2023-04"}

    for m in MONTHS:
        rows = read_csv(s3, reports.write_settlement("niimi", m))
        assert rows[0] == ["対象月", "加盟店ID", "加盟店名", "利用ポイント", "取消ポイント", "精算ポイント"]
        got = {r[1]: (r[2], int(r[3]), int(r[4]), int(r[5])) for r in rows[1:-1]}
        exp = {
            mid: (MERCHANTS[mid], c[Op.SPEND], c[Op.CANCEL], c[Op.SPEND] - c[Op.CANCEL])
            for mid, c in want["settlement"][m].items()
        }
        assert got == exp, m
        total = rows[-1]
        assert total[:2] == [m, "合計"]
        assert int(total[5]) == sum(v[3] for v in exp.values())

        [_, row] = read_csv(s3, reports.write_expired("niimi", m))
        ops = want["by_month"][m]
        assert row == [m, str(ops[Op.EXPIRE]), str(ops[Op.VOID]), str(ops[Op.TRANSFER_OUT]),
                       str(ops[Op.TRANSFER_IN])], m

        grants = {r[1]: int(r[3]) for r in read_csv(s3, reports.write_grants("niimi", m))[1:]}
        assert grants == {s.value: ops[s.value] for s in Source}, m
        assert sum(grants.values()) == ops[Op.GRANT]

        rows = read_csv(s3, reports.write_campaigns("niimi", m))
        assert {r[1]: int(r[2]) for r in rows[1:-1]} == dict(want["campaigns"][m]), m

    # the month boundary: the 23:59:59 payment is October's, its cancel November's
    assert want["settlement"]["2022-10"]["M-2"][Op.SPEND] == 1500
    assert want["settlement"]["2022-11"]["M-2"][Op.CANCEL] == 700
    assert want["by_month"]["2023-04"][Op.EXPIRE] > 3000  # the job's expiries and the late cancel
    assert want["by_month"]["2022-11"]["rebate"] == 4 * 123
    assert set(want["campaigns"]["2022-11"]) == {CAMPAIGNS[0]}

    rows = read_csv(s3, reports.write_outstanding("niimi", "2023-04", as_of="2023-04-25"))
    got = {r[1]: int(r[2]) for r in rows[1:-1]}
    assert got == dict(want["outstanding"]) == dict(lots_outstanding(ledger))
    assert int(rows[-1][2]) == sum(got.values()) > 0


def test_the_csv_keeps_japanese_names_and_quotes_what_excel_needs_quoted(ledger, clock, reports, s3):
    mix = Mix(ledger, clock)
    idm = mix.card(1)
    mix.at(date(2025, 6, 2)).grant(idm, 1000, Source.INITIAL)
    mix.spend(idm, 300, "M-2")
    mix.spend(idm, 200, "M-1")

    key = reports.write_settlement("niimi", "2025-06")
    assert key == "reports/niimi/2025-06/settlement.csv"
    raw = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    assert raw.startswith("\ufeff対象月,加盟店ID,加盟店名".encode())
    assert 'M-2,"カフェ ""森の家"", 本店",300,0,300\r\n'.encode() in raw
    assert "M-1,にーみん食堂,200,0,200\r\n".encode() in raw
    assert s3.head_object(Bucket=BUCKET, Key=key)["ContentType"].startswith("text/csv")


def test_an_issuer_sees_only_its_own_figures(ledger, clock, reports, s3):
    mix = Mix(ledger, clock)
    niimi, okayama = mix.card(1), mix.card(1, "okayama")
    mix.at(date(2025, 6, 2))
    mix.grant(niimi, 1000, Source.INITIAL)
    mix.grant(okayama, 2000, Source.INITIAL)
    ledger.spend(okayama, 500, request_id="ok", actor=till("OK-1"))

    assert reports.settlement_lines("niimi", "2025-06") == []
    assert [(x.merchant_id, x.name, x.net) for x in reports.settlement_lines("okayama", "2025-06")] == [
        ("OK-1", "岡山の店", 500)
    ]
    assert reports.outstanding("niimi") == {"2025-12": 1000}
    assert reports.outstanding("okayama") == {"2025-12": 1500}


# --- cost ---------------------------------------------------------------------------------


def count_calls(ledger, run) -> list[tuple[str, dict]]:
    calls: list[tuple[str, dict]] = []

    def hook(model, params, **_):
        calls.append((model.name, params))

    events = ledger.store.connection.client.meta.events
    events.register("provide-client-params.dynamodb", hook, unique_id="test-reports-count")
    try:
        run()
    finally:
        events.unregister("provide-client-params.dynamodb", unique_id="test-reports-count")
    return calls


def aggregate_queries(calls) -> list[str]:
    """The partition each Query on the report items asked for."""
    return [
        params["ExpressionAttributeValues"][":0"]["S"] if ":0" in params["ExpressionAttributeValues"] else "?"
        for op, params in calls
        if op == "Query" and any(v.get("S", "").startswith(keys.AGGREGATE)
                                 for v in params["ExpressionAttributeValues"].values())
    ]


def report_costs(ledger, reports) -> dict[str, list[str]]:
    runs = {
        "settlement": lambda: reports.write_settlement("niimi", "2025-06"),
        "outstanding": lambda: reports.write_outstanding("niimi", "2025-06", as_of="2025-07-01"),
        "expired": lambda: reports.write_expired("niimi", "2025-06"),
        "grants": lambda: reports.write_grants("niimi", "2025-06"),
        "campaigns": lambda: reports.write_campaigns("niimi", "2025-06"),
    }
    return {name: [op for op, _ in count_calls(ledger, run)] for name, run in runs.items()}


def test_a_report_costs_a_query_per_shard_a_month_whatever_the_number_of_entries(ledger, clock, reports):
    mix = Mix(ledger, clock)
    cards = [mix.card(i) for i in range(1, 9)]
    mix.at(date(2025, 6, 2))

    def activity(rounds: int) -> None:
        for r in range(rounds):
            for i, idm in enumerate(cards):
                mix.grant(idm, 100, Source.ADMIN, reason="ボランティア")
                pay = mix.spend(idm, 60, f"M-{1 + (i + r) % 3}")
                if i % 3 == 0:
                    mix.cancel(idm, pay, f"M-{1 + (i + r) % 3}")
                mix.grant(idm, 10, Source.CAMPAIGN, reason=CAMPAIGNS[i % 2])

    activity(1)
    few = report_costs(ledger, reports)
    activity(4)
    many = report_costs(ledger, reports)

    assert few == many
    shards = keys.AGGREGATE_SHARDS
    assert many["settlement"] == ["Query"] * (shards + 1)  # a query per shard and the merchant directory
    assert many["outstanding"] == ["Query"] * shards
    assert many["campaigns"] == ["Query"] * shards
    assert many["expired"] == many["grants"] == ["BatchGetItem"] * -(-shards // 100)  # 100 keys a call

    calls = count_calls(ledger, lambda: reports.settlement_lines("niimi", "2025-06"))
    assert sorted(aggregate_queries(calls)) == sorted(keys.month_partitions("niimi", "2025-06"))


# --- the ledger transaction -----------------------------------------------------------------


def transactions(ledger, run) -> list[list[tuple[str, str, str]]]:
    """(Put|Update, pk, sk) of every item of every TransactWriteItems `run` sends."""
    calls = count_calls(ledger, run)
    found = []
    for op, params in calls:
        if op == "TransactWriteItems":
            items = []
            for entry in params["TransactItems"]:
                (kind, body), = entry.items()
                key = body.get("Key") or {k: body["Item"][k] for k in ("pk", "sk")}
                items.append((kind, key["pk"]["S"], key["sk"]["S"]))
            found.append(items)
    return found


def test_the_figures_move_in_the_changes_own_transaction_and_no_item_is_in_every_one(ledger, clock):
    mix = Mix(ledger, clock)
    cards = [mix.card(i) for i in range(1, 9)]
    assert len({ledger_keys.shard(idm) for idm in cards}) > 1
    mix.at(date(2025, 6, 2))
    for idm in cards:
        mix.grant(idm, 1000, Source.INITIAL)
    mix.spend(cards[0], 10, "M-1")  # warm

    def changes() -> None:
        for i, idm in enumerate(cards):
            mix.grant(idm, 100, Source.CAMPAIGN, reason=CAMPAIGNS[0])
            pay = mix.spend(idm, 1050, f"M-{1 + i % 3}")  # two lots, two expiry months
            mix.cancel(idm, pay, f"M-{1 + i % 3}")

    txs = transactions(ledger, changes)
    assert len(txs) == 3 * len(cards)  # one transaction per change: no extra round trip
    for items in txs:
        keys_written = [(pk, sk) for _, pk, sk in items]
        assert len(keys_written) == len(set(keys_written))  # DynamoDB allows one action per item
        assert len(items) <= 3 + 4  # card, entry, request; at most 4 report items
        assert any(pk.startswith(keys.AGGREGATE) for _, pk, _ in items)
    every = set.intersection(*({(pk, sk) for _, pk, sk in items} for items in txs))
    assert every == set()  # no hot key: nothing is written by every change
    spend = txs[1]
    assert sorted(sk for kind, pk, sk in spend if kind == "Update") == [
        "EXPIRES#2025-12", "MERCHANT#M-1"  # both lots expire in December: one outstanding item
    ]


def test_one_cards_changes_spread_their_figures_over_the_shards_of_their_entry_ids(ledger, clock):
    """The figures' shard is the change's (from its entry id), not the card's: one busy
    card does not make a hot item either, and a change tried again writes the same keys."""
    mix = Mix(ledger, clock)
    idm = mix.card(1)
    mix.at(date(2025, 6, 2))
    rids: list[str] = []

    def changes() -> None:
        for _ in range(12):
            rids.append(mix.rid("grant"))
            ledger.grant(idm, 10, request_id=rids[-1], actor=OPERATOR, source=Source.ADMIN)

    txs = transactions(ledger, changes)
    assert len(txs) == len(rids)
    shards = set()
    for rid, items in zip(rids, txs, strict=True):
        shard = keys.aggregate_shard(ledger.request_key(rid))
        aggregates = {pk for _, pk, _ in items if pk.startswith(keys.AGGREGATE)}
        assert aggregates == {keys.month_partition("niimi", "2025-06", shard),
                              keys.outstanding_partition("niimi", shard)}
        shards.add(shard)
    assert len(shards) > 6


def test_figures_written_under_the_cards_sixteen_shards_before_are_still_summed(ledger, clock, reports):
    """Items written before, in the card's shard 0..15, have keys among today's shards."""
    for n in range(ledger_keys.SHARDS):
        assert keys.month_partition("niimi", "2025-06", n) in keys.month_partitions("niimi", "2025-06")
        assert keys.outstanding_partition("niimi", n) in keys.outstanding_partitions("niimi")
    table = boto3.resource("dynamodb").Table("test-table")
    table.put_item(Item={"pk": "AGG#niimi#2025-06#15", "sk": "TOTALS", "type": "aggregate", "granted": 7,
                         "granted_admin": 7})
    table.put_item(Item={"pk": "AGG#niimi#2025-06#03", "sk": "MERCHANT#M-1", "type": "aggregate", "spent": 40})
    table.put_item(Item={"pk": "AGG#niimi#OUTSTANDING#09", "sk": "EXPIRES#2031-01", "type": "aggregate",
                         "points": 7})
    mix = Mix(ledger, clock)
    idm = mix.card(1)
    mix.at(date(2025, 6, 2)).grant(idm, 100, Source.ADMIN)
    mix.spend(idm, 60, "M-1")
    store = reports.store
    assert store.month_totals("niimi", "2025-06")["granted_admin"] == 107
    assert store.month_lines("niimi", "2025-06", keys.MERCHANT)["M-1"]["spent"] == 100
    assert store.outstanding("niimi")["2031-01"] == 7


# --- the monthly job ---------------------------------------------------------------------------


def test_the_monthly_job_writes_last_months_reports_once(ledger, clock, reports, s3):
    mix = Mix(ledger, clock)
    idm = mix.card(1)
    mix.at(date(2025, 6, 30)).grant(idm, 1000, Source.INITIAL)
    mix.spend(idm, 400, "M-3")

    first = run_monthly_reports(reports, "niimi", date(2025, 7, 1))
    assert first.month == "2025-06" and not first.skipped
    assert set(first.written) == {"settlement", "outstanding", "expired", "grants", "campaigns"}
    assert all(key.startswith("reports/niimi/2025-06/") for key in first.written.values())
    rows = read_csv(s3, first.written["settlement"])
    assert rows[1] == ["2025-06", "M-3", "新見ストア", "400", "0", "400"]

    mix.at(date(2025, 7, 2)).spend(idm, 100, "M-3")  # July's: June's figures stay
    again = run_monthly_reports(reports, "niimi", date(2025, 7, 2))
    assert again.skipped and again.written == {}
    forced = run_monthly_reports(reports, "niimi", date(2025, 7, 2), force=True)
    assert read_csv(s3, forced.written["settlement"])[1] == ["2025-06", "M-3", "新見ストア", "400", "0", "400"]
    assert run_monthly_reports(reports, "niimi", date(2025, 1, 1)).month == "2024-12"
