"""What each change adds to the report figures, the CSV Excel needs, and the anchor
digest: pure, no AWS."""

from __future__ import annotations

import hashlib
from datetime import date, datetime, timezone

from chalicelib.ledger.domain import Actor, Entry, Movement, Op
from chalicelib.reports.domain import (
    Bucket,
    ChainHead,
    Kind,
    anchor_digest,
    campaigns_csv,
    previous_month,
    settlement_csv,
    settlement_lines,
    tallies,
)

TILL = Actor("terminal", "T-1", merchant="M-1")
JOB = Actor("job", "expiry")
DEC, JAN = date(2025, 12, 1), date(2026, 1, 31)


def entry(kind: str, day: date, *movements: tuple, actor: Actor = TILL, **kw) -> Entry:
    return Entry(
        card="0a00000000000001", seq=1, kind=kind, at=datetime(2025, 6, 2, tzinfo=timezone.utc), day=day,
        actor=actor, request="r", movements=tuple(Movement(lot, op, n, exp) for lot, op, n, exp in movements), **kw,
    )


def test_a_spend_over_two_lots_adds_to_its_merchant_and_takes_from_each_expiry_month():
    spend = entry("spend", date(2025, 6, 30), ("1", Op.SPEND, 70, DEC), ("2", Op.SPEND, 30, JAN))
    assert tallies([spend]) == {
        Bucket(Kind.MERCHANT, "2025-06", "M-1"): {"spent": 100},
        Bucket(Kind.OUTSTANDING, "2025-12"): {"points": -70},
        Bucket(Kind.OUTSTANDING, "2026-01"): {"points": -30},
    }


def test_a_cancel_of_an_expired_portion_nets_out_of_the_outstanding_figures():
    cancel = entry("spend_cancel", date(2025, 7, 1), ("1", Op.CANCEL, 70, DEC), ("1", Op.EXPIRE, 70, DEC))
    assert tallies([cancel]) == {
        Bucket(Kind.MERCHANT, "2025-07", "M-1"): {"cancelled": 70},
        Bucket(Kind.TOTALS, "2025-07"): {"expired": 70},
    }


def test_grants_count_by_source_and_campaign_grants_by_campaign_name():
    rebate = entry("grant", date(2025, 6, 30), ("1", Op.GRANT, 123, DEC), actor=JOB, result={"source": "rebate"})
    campaign = entry("grant", date(2025, 6, 18), ("2", Op.GRANT, 5000, DEC), actor=JOB,
                     reason="マイナポイント", result={"source": "campaign"})
    assert tallies([rebate, campaign]) == {
        Bucket(Kind.TOTALS, "2025-06"): {"granted_rebate": 123, "granted_campaign": 5000},
        Bucket(Kind.CAMPAIGN, "2025-06", "マイナポイント"): {"granted": 5000},
        Bucket(Kind.OUTSTANDING, "2025-12"): {"points": 5123},
    }


def test_a_transfer_moves_nothing_out_of_the_outstanding_figures():
    out = entry("transfer", DEC, ("1", Op.TRANSFER_OUT, 500, JAN), ("2", Op.EXPIRE, 20, DEC), actor=JOB)
    into = entry("transfer", DEC, ("3.0", Op.TRANSFER_IN, 500, JAN), actor=JOB)
    assert tallies([out, into]) == {
        Bucket(Kind.TOTALS, "2025-12"): {"transferred_out": 500, "transferred_in": 500, "expired": 20},
        Bucket(Kind.OUTSTANDING, "2025-12"): {"points": -20},
    }


def test_every_counter_has_its_attribute_on_the_aggregate_item():
    from pynamodb.attributes import NumberAttribute

    from chalicelib.reports.domain import COUNTERS
    from chalicelib.reports.store import AggregateItem

    assert all(isinstance(getattr(AggregateItem, name, None), NumberAttribute) for name in COUNTERS)


def test_the_settlement_csv_is_utf8_with_a_bom_and_crlf_and_totals():
    lines = settlement_lines({"M-2": {"spent": 300, "cancelled": 100}, "M-1": {"spent": 50}},
                             {"M-1": "にーみん食堂", "M-2": "森の家"})
    body = settlement_csv("2025-06", lines)
    assert body.startswith(b"\xef\xbb\xbf")
    assert body.decode("utf-8-sig").split("\r\n") == [
        "対象月,加盟店ID,加盟店名,利用ポイント,取消ポイント,精算ポイント",
        "2025-06,M-1,にーみん食堂,50,0,50",
        "2025-06,M-2,森の家,300,100,200",
        "2025-06,合計,,350,100,250",
        "",
    ]
    empty = campaigns_csv("2025-06", {}).decode("utf-8-sig")
    assert empty == "対象月,キャンペーン名,付与ポイント\r\n2025-06,合計,0\r\n"


def test_the_anchor_digest_is_sha256_over_documented_lines_sorted_by_idm():
    heads = [ChainHead("0b", 2, "bb"), ChainHead("0a", 1, "aa")]
    text = "niimi\n2025-06-02\n2\n0a 1 aa\n0b 2 bb\n"
    assert anchor_digest("niimi", date(2025, 6, 2), heads) == hashlib.sha256(text.encode()).hexdigest()
    assert anchor_digest("niimi", date(2025, 6, 3), heads) != anchor_digest("niimi", date(2025, 6, 2), heads)


def test_last_month():
    assert previous_month(date(2025, 7, 1)) == "2025-06"
    assert previous_month(date(2026, 1, 31)) == "2025-12"
