"""The audit (§10) on moto: every chain verified, the daily anchor of every chain head
(an item put once and a JSON file in the anchors bucket, under S3 Object Lock in
COMPLIANCE mode), and the kinds of tampering: an edited entry, which the chain walk
catches; history rewritten and re-chained consistently, which only the anchor catches;
and the anchor itself rewritten, which Object Lock defeats."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date, datetime, timezone

import boto3
import pytest
from botocore.exceptions import ClientError

from chalicelib import jobs, services
from chalicelib.ledger import keys as ledger_keys
from chalicelib.ledger.chain import link
from chalicelib.ledger.domain import Actor, Source
from chalicelib.reports import audit as audit_module
from chalicelib.reports.__main__ import main as cli
from chalicelib.reports.audit import audit, run_audit, take_anchor
from chalicelib.reports.domain import ChainHead, anchor_digest
from chalicelib.reports.errors import AuditFailed
from chalicelib.reports.store import ReportStore
from localdev.stack import create_anchors_bucket

BUCKET = "test-audit"
ANCHORS = "test-anchors"
OPERATOR = Actor("operator", "ops")
NOW = datetime(2025, 6, 2, 15, 0, tzinfo=timezone.utc)


@pytest.fixture
def s3(store):
    client = boto3.client("s3", region_name="ap-northeast-1")
    client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "ap-northeast-1"})
    create_anchors_bucket(client, ANCHORS, retention_days=1)  # as localdev and infra/ make it
    return client


@pytest.fixture
def report_store(store, s3) -> ReportStore:
    return ReportStore(store.table, s3, BUCKET, anchors_bucket=ANCHORS)


def cards_with_history(ledger, clock, count: int = 5) -> list[str]:
    idms = []
    clock.set(date(2025, 6, 2))
    for n in range(1, count + 1):
        idm = f"0a{n:014x}"
        ledger.open_card(idm=idm, card_number=f"JW{n:015d}", issuer_id="niimi")
        ledger.grant(idm, 5000, request_id=f"grant:{n}", actor=OPERATOR, source=Source.INITIAL)
        for k in range(n % 3 + 1):
            ledger.spend(idm, 100, request_id=f"pay:{n}:{k}", actor=Actor("terminal", "T-1", merchant="M-1"))
        idms.append(idm)
    other = "0b00000000000001"
    ledger.open_card(idm=other, card_number="JW000001000000001", issuer_id="okayama")
    ledger.grant(other, 100, request_id="grant:ok", actor=OPERATOR, source=Source.INITIAL)
    ledger.open_card(idm="0a00000000000fff", card_number="JW000000000000999", issuer_id="niimi")  # no entries
    return idms


def rewrite_entry(store, idm: str, seq: int, edit) -> None:
    """Rewrite entry `seq` of the card with `edit(body)` and re-chain every later entry
    and the card's head consistently, as someone able to write the table could."""
    client = store.connection.client
    pk, _ = ledger_keys.card(idm)
    items = client.query(
        TableName=store.table.name, KeyConditionExpression="pk = :pk AND begins_with(sk, :e)",
        ExpressionAttributeValues={":pk": {"S": pk}, ":e": {"S": ledger_keys.ENTRY}}, ConsistentRead=True,
    )["Items"]
    prev = None
    for item in sorted(items, key=lambda i: i["sk"]["S"]):
        n = ledger_keys.entry_seq(item["sk"]["S"])
        body = item["body"]["S"]
        if n < seq:
            prev = item["hash"]["S"]
            continue
        if n == seq:
            body = json.dumps(edit(json.loads(body)), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
            prev = item["prev"]["S"]
        digest = link(prev, body)
        client.update_item(
            TableName=store.table.name, Key={"pk": item["pk"], "sk": item["sk"]},
            UpdateExpression="SET body = :b, prev = :p, #h = :h", ExpressionAttributeNames={"#h": "hash"},
            ExpressionAttributeValues={":b": {"S": body}, ":p": {"S": prev}, ":h": {"S": digest}},
        )
        prev = digest
    client.update_item(
        TableName=store.table.name, Key={"pk": {"S": pk}, "sk": {"S": "CARD"}},
        UpdateExpression="SET head = :h", ExpressionAttributeValues={":h": {"S": prev}},
    )


def test_a_sound_ledger_passes_and_its_anchor_holds_while_the_heads_move_on(ledger, clock, report_store, s3):
    idms = cards_with_history(ledger, clock)
    anchor = take_anchor(ledger, report_store, "niimi", date(2025, 6, 2), now=NOW)

    assert anchor.count == len(idms) + 1  # the Okayama card is not Niimi's
    data = json.loads(s3.get_object(Bucket=ANCHORS, Key=anchor.object_key)["Body"].read())
    assert anchor.object_key == f"anchors/niimi/2025-06-02/{anchor.digest}.json"
    assert (data["date"], data["count"], data["digest"]) == ("2025-06-02", anchor.count, anchor.digest)
    heads = [ChainHead(*row) for row in data["cards"]]
    assert [h.idm for h in heads] == sorted(h.idm for h in heads)
    assert {h.idm: (h.seq, h.head) for h in heads} == {
        idm: (ledger.card(idm).seq, ledger.card(idm).head) for idm in [*idms, "0a00000000000fff"]
    }
    assert anchor_digest("niimi", date(2025, 6, 2), heads) == anchor.digest  # an auditor can recompute it

    for idm in idms:  # the heads move on; every chain still passes through its anchored head
        ledger.spend(idm, 1, request_id=f"later:{idm}", actor=Actor("terminal", "T-1", merchant="M-1"))
    report = audit(ledger, report_store, "niimi", against=anchor)
    assert report.ok and report.cards == len(idms) + 1 and report.anchor == date(2025, 6, 2)
    assert report.entries == sum(ledger.card(idm).seq for idm in idms)

    # one anchor per day: a second run returns the first, and the item is put only once
    assert take_anchor(ledger, report_store, "niimi", date(2025, 6, 2), now=NOW) == anchor
    assert report_store.put_anchor(anchor) is False


def test_an_edited_entry_is_caught_by_the_chain_walk(ledger, clock, report_store):
    idms = cards_with_history(ledger, clock)
    client = report_store.table.connection.client
    pk, sk = ledger_keys.entry(idms[2], 2)
    body = client.get_item(TableName=report_store.table.name, Key={"pk": {"S": pk}, "sk": {"S": sk}})["Item"]
    client.update_item(
        TableName=report_store.table.name, Key={"pk": {"S": pk}, "sk": {"S": sk}},
        UpdateExpression="SET body = :b",
        ExpressionAttributeValues={":b": {"S": body["body"]["S"].replace('"M-1"', '"M-9"')}},
    )

    assert not ledger.verify(idms[2]).ok
    report = audit(ledger, report_store, "niimi")
    assert [(f.idm, f.bad_seq) for f in report.failures] == [(idms[2], 2)]
    assert "hash" in report.failures[0].problem
    assert not report.ok
    # put it back, so the ledger's own teardown checks pass
    client.update_item(
        TableName=report_store.table.name, Key={"pk": {"S": pk}, "sk": {"S": sk}},
        UpdateExpression="SET body = :b", ExpressionAttributeValues={":b": body["body"]},
    )


def test_history_rewritten_and_rechained_passes_the_walk_but_not_the_anchor(ledger, clock, report_store):
    idms = cards_with_history(ledger, clock)
    anchor = take_anchor(ledger, report_store, "niimi", date(2025, 6, 2), now=NOW)
    victim = idms[1]  # grant, then 3 payments at M-1
    for k in range(2):
        ledger.spend(victim, 10, request_id=f"after:{k}", actor=Actor("terminal", "T-1", merchant="M-1"))

    def redirect(body: dict) -> dict:  # a payment moved to another store's settlement
        return {**body, "actor": {**body["actor"], "merchant": "M-EVIL"}}

    rewrite_entry(ledger.store, victim, 2, redirect)
    assert ledger.history(victim, limit=100).entries[-2].actor.merchant == "M-EVIL"

    assert ledger.verify(victim).ok  # consistent with itself: the walk alone passes
    report = audit(ledger, report_store, "niimi", against=anchor)
    assert not report.ok
    [failure] = report.failures
    assert (failure.idm, failure.bad_seq) == (victim, ledger.card(victim).seq - 2)
    assert failure.problem == "the chain no longer passes through its anchored head"
    assert audit(ledger, report_store, "niimi").ok  # without the anchor nothing shows


def test_an_anchor_file_cannot_be_deleted_or_replaced_in_the_anchors_bucket(ledger, clock, report_store, s3):
    cards_with_history(ledger, clock)
    anchor = take_anchor(ledger, report_store, "niimi", date(2025, 6, 2), now=NOW)
    (original,) = s3.list_object_versions(Bucket=ANCHORS, Prefix="anchors/")["Versions"]
    head = s3.head_object(Bucket=ANCHORS, Key=anchor.object_key)
    assert head["ObjectLockMode"] == "COMPLIANCE"  # the bucket's default retention locked it

    # Whoever can write the bucket cannot remove the version written...
    with pytest.raises(ClientError) as refused:
        s3.delete_object(Bucket=ANCHORS, Key=anchor.object_key, VersionId=original["VersionId"])
    assert refused.value.response["Error"]["Code"] == "AccessDenied"
    s3.delete_object(Bucket=ANCHORS, Key=anchor.object_key)  # only hides it behind a delete marker
    # ...nor replace it: a new version, a second file of the day, and the item (whoever
    # writes the table) rewritten to match them.
    data = json.loads(s3.get_object(Bucket=ANCHORS, Key=anchor.object_key, VersionId=original["VersionId"])
                      ["Body"].read())
    forged_heads = [ChainHead(*row) for row in data["cards"][1:]]  # a card quietly dropped
    forged_digest = anchor_digest("niimi", date(2025, 6, 2), forged_heads)
    forged = {**data, "cards": data["cards"][1:], "count": len(forged_heads), "digest": forged_digest}
    s3.put_object(Bucket=ANCHORS, Key=anchor.object_key, Body=json.dumps(forged).encode())
    forged_key = f"anchors/niimi/2025-06-02/{forged_digest}.json"
    s3.put_object(Bucket=ANCHORS, Key=forged_key, Body=json.dumps(forged).encode())
    store = ledger.store.table
    boto3.client("dynamodb", region_name="ap-northeast-1").update_item(
        TableName=store.name, Key={"pk": {"S": "ANCHOR#niimi"}, "sk": {"S": "2025-06-02"}},
        UpdateExpression="SET digest = :d, #c = :c, object_key = :k",
        ExpressionAttributeNames={"#c": "count"},
        ExpressionAttributeValues={":d": {"S": forged_digest}, ":c": {"N": str(len(forged_heads))},
                                   ":k": {"S": forged_key}},
    )
    rewritten = report_store.get_anchor("niimi", date(2025, 6, 2))
    assert rewritten.digest == forged_digest

    # The audit reads the day's file as first written, so the forgery shows...
    report = audit(ledger, report_store, "niimi", against=rewritten)
    assert report.anchor_problem == "the anchor file does not match the anchor's digest"
    assert not report.ok
    # ...and the genuine anchor still holds.
    assert report_store.anchor_heads(anchor) == [ChainHead(*row) for row in data["cards"]]
    assert audit(ledger, report_store, "niimi", against=anchor).ok


def test_an_anchor_item_without_its_file_fails_the_audit(ledger, clock, report_store, s3):
    cards_with_history(ledger, clock)
    anchor = take_anchor(ledger, report_store, "niimi", date(2025, 6, 2), now=NOW)
    elsewhere = replace(anchor, day=date(2025, 6, 1))  # an item planted for a day with no file
    report = audit(ledger, report_store, "niimi", against=elsewhere)
    assert report.anchor_problem == "the anchors bucket has no file for the anchor's day"
    assert not report.ok


def test_a_run_that_stopped_after_the_file_adopts_it(ledger, clock, report_store, s3):
    idms = cards_with_history(ledger, clock)
    day = date(2025, 6, 2)
    first = take_anchor(ledger, report_store, "niimi", day, now=NOW)
    boto3.client("dynamodb", region_name="ap-northeast-1").delete_item(
        TableName=ledger.store.table.name, Key={"pk": {"S": "ANCHOR#niimi"}, "sk": {"S": day.isoformat()}})
    ledger.spend(idms[0], 1, request_id="meanwhile", actor=Actor("terminal", "T-1", merchant="M-1"))
    again = take_anchor(ledger, report_store, "niimi", day, now=NOW)  # the item follows the locked file
    assert (again.digest, again.object_key) == (first.digest, first.object_key)
    assert len(s3.list_object_versions(Bucket=ANCHORS, Prefix="anchors/")["Versions"]) == 1
    assert audit(ledger, report_store, "niimi", against=again).ok


def test_a_chain_shorter_than_anchored_or_a_missing_card_fails(ledger, clock, report_store):
    idms = cards_with_history(ledger, clock)
    anchor = take_anchor(ledger, report_store, "niimi", date(2025, 6, 2), now=NOW)
    card = ledger.card(idms[0])
    report = ledger.verify(idms[0], through=(card.seq + 1, "f" * 64))
    assert (report.ok, report.problem) == (False, "the chain is shorter than when it was anchored")
    assert not ledger.verify("0a00000000000fff", through=(0, "f" * 64)).ok
    assert ledger.verify("0a00000000000fff", through=(0, "0" * 64)).ok
    assert audit(ledger, report_store, "niimi", against=anchor).ok


def test_the_daily_job_anchors_today_and_checks_yesterdays_anchor_logging_progress(
    ledger, clock, report_store, monkeypatch
):
    logged: list[tuple[str, dict]] = []
    monkeypatch.setattr(audit_module, "_log", lambda message, **fields: logged.append((message, fields)))
    idms = cards_with_history(ledger, clock, count=6)

    first = run_audit(ledger, report_store, "niimi", date(2025, 6, 2), now=NOW, progress_every=2)
    assert first.ok and first.anchor is None  # nothing to check against yet
    assert report_store.get_anchor("niimi", date(2025, 6, 2)) is not None

    ledger.spend(idms[0], 5, request_id="next-day", actor=Actor("terminal", "T-1", merchant="M-1"))
    second = run_audit(ledger, report_store, "niimi", date(2025, 6, 3), now=NOW, progress_every=2)
    assert second.ok and second.anchor == date(2025, 6, 2)
    assert report_store.latest_anchor("niimi", before=date(2025, 6, 4)).day == date(2025, 6, 3)

    progress = [fields for message, fields in logged if message == "audit progress"]
    assert [f["cards_done"] for f in progress] == [2, 4, 6, 2, 4, 6]  # 7 Niimi cards, twice
    assert all(f["cards_total"] == 7 and "cards_per_s" in f for f in progress)
    assert not any(idm in json.dumps(logged, default=str) for idm in idms)  # no IDm in full


def test_the_schedules_and_the_cli(ledger, clock, report_store, monkeypatch, capsys):
    from chalicelib.reports.service import Reports

    idms = cards_with_history(ledger, clock)
    monkeypatch.setattr(services, "ledger", lambda: ledger)
    monkeypatch.setattr(services, "report_store", lambda: report_store)
    monkeypatch.setattr(services, "reports", lambda: Reports(report_store, lambda issuer: {}))

    assert [r.ok for r in jobs.daily_audit()] == [True, True]  # niimi and okayama
    assert [r.month for r in jobs.daily_reports()] == ["2025-05", "2025-05"]

    assert cli(["audit", "--issuer", "niimi"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["ok"] and out["anchor"] == "2025-06-02"

    rewrite_entry(ledger.store, idms[0], 1, lambda body: {**body, "reason": "edited"})
    assert cli(["audit", "--issuer", "niimi", "--against", "2025-06-02"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert [f["idm"] for f in out["failures"]] == [idms[0]]
    with pytest.raises(AuditFailed):
        clock.set(date(2025, 6, 3))
        jobs.daily_audit()


def test_an_anchor_item_removed_from_the_table_fails_the_daily_audit(ledger, clock, report_store):
    """Without the item of 2025-06-03 the audit would check against 2025-06-02 and miss a
    history rewritten between the two: the locked file of 2025-06-03 shows the gap."""
    cards_with_history(ledger, clock)
    assert run_audit(ledger, report_store, "niimi", date(2025, 6, 2), now=NOW).ok
    assert run_audit(ledger, report_store, "niimi", date(2025, 6, 3), now=NOW).ok
    boto3.client("dynamodb", region_name="ap-northeast-1").delete_item(
        TableName=ledger.store.table.name, Key={"pk": {"S": "ANCHOR#niimi"}, "sk": {"S": "2025-06-03"}})
    report = run_audit(ledger, report_store, "niimi", date(2025, 6, 4), now=NOW)
    assert report.anchor == date(2025, 6, 2)
    assert report.anchor_problem == ("the table has no anchor item for 2025-06-03, "
                                     "whose file is in the anchors bucket")
    assert not report.ok
    assert run_audit(ledger, report_store, "okayama", date(2025, 6, 4), now=NOW).ok  # another issuer's files


# --- the daily audit follows the work (issue 14) -----------------------------------------

PAY = Actor("terminal", "T-1", merchant="M-1")


def dynamodb_calls(store) -> list[str]:
    """The DynamoDB operations the test's client makes from now on, by name."""
    calls: list[str] = []
    store.connection.client.meta.events.register(
        "before-call.dynamodb", lambda model, **_: calls.append(model.name), unique_id="test-audit-calls")
    return calls


def set_entry_body(store, idm: str, seq: int, body: str) -> str:
    """Edit one entry's body in place (no re-chaining); returns the body it had."""
    client = store.connection.client
    pk, sk = ledger_keys.entry(idm, seq)
    key = {"pk": {"S": pk}, "sk": {"S": sk}}
    old = client.get_item(TableName=store.table.name, Key=key)["Item"]["body"]["S"]
    client.update_item(TableName=store.table.name, Key=key, UpdateExpression="SET body = :b",
                       ExpressionAttributeValues={":b": {"S": body}})
    return old


def anchored_days(ledger, clock, report_store) -> list[str]:
    """Cards with history on 2025-06-02, anchored that day and the next (the 06-03 run
    re-checks the cards written on 06-02, the anchor's own day)."""
    idms = cards_with_history(ledger, clock)
    assert run_audit(ledger, report_store, "niimi", date(2025, 6, 2), now=NOW).ok
    assert run_audit(ledger, report_store, "niimi", date(2025, 6, 3), now=NOW).ok
    clock.set(date(2025, 6, 4))
    return idms


def test_the_daily_audit_reads_only_the_cards_changed_since_the_last_anchor_without_a_scan(
    ledger, clock, report_store
):
    idms = anchored_days(ledger, clock, report_store)
    ledger.spend(idms[3], 7, request_id="on-the-4th", actor=PAY)
    calls = dynamodb_calls(ledger.store)

    report = run_audit(ledger, report_store, "niimi", date(2025, 6, 4), now=NOW)

    assert report.ok and report.anchor == date(2025, 6, 3)
    assert (report.cards, report.entries) == (1, 2)  # the anchored entry's hash and the new one
    assert "Scan" not in calls
    assert calls.count("GetItem") <= 5  # the card, the anchors items (none per unchanged card)
    anchor = report_store.get_anchor("niimi", date(2025, 6, 4))
    heads = {h.idm: (h.seq, h.head) for h in report_store.anchor_heads(anchor)}
    assert heads == {idm: (ledger.card(idm).seq, ledger.card(idm).head) for idm in [*idms, "0a00000000000fff"]}
    assert audit(ledger, report_store, "niimi", against=anchor).ok  # the full re-verification agrees


def test_a_tampered_new_entry_is_caught_by_the_daily_audit_and_stays_reported(ledger, clock, report_store):
    idms = anchored_days(ledger, clock, report_store)
    victim = idms[1]
    ledger.spend(victim, 7, request_id="on-the-4th", actor=PAY)
    seq = ledger.card(victim).seq
    original = set_entry_body(ledger.store, victim, seq, "{}")  # not re-chained

    report = run_audit(ledger, report_store, "niimi", date(2025, 6, 4), now=NOW)
    assert [(f.idm, f.bad_seq) for f in report.failures] == [(victim, seq)]
    anchor = report_store.get_anchor("niimi", date(2025, 6, 4))
    held = {h.idm: h.seq for h in report_store.anchor_heads(anchor)}
    assert held[victim] == seq - 1  # the anchor does not move onto the tampered entry

    # The card does not change again, yet the next days still report it (walked in full)...
    again = run_audit(ledger, report_store, "niimi", date(2025, 6, 5), now=NOW)
    assert [(f.idm, f.bad_seq) for f in again.failures] == [(victim, seq)]
    # ...until it is put right.
    set_entry_body(ledger.store, victim, seq, original)
    assert run_audit(ledger, report_store, "niimi", date(2025, 6, 6), now=NOW).ok


@pytest.mark.parametrize("rechained", [False, True])
def test_old_history_tampered_escapes_the_daily_audit_but_not_the_full_reverification(
    ledger, clock, report_store, rechained
):
    idms = anchored_days(ledger, clock, report_store)
    victim = idms[2]
    if rechained:  # re-hashed: the whole chain and the card's head rewritten consistently
        rewrite_entry(ledger.store, victim, 1, lambda body: {**body, "reason": "edited"})
    else:
        original = set_entry_body(ledger.store, victim, 1, "{}")
    ledger.spend(idms[0], 1, request_id="someone-else", actor=PAY)

    daily = run_audit(ledger, report_store, "niimi", date(2025, 6, 4), now=NOW)
    assert daily.ok and daily.cards == 1  # old history is not re-hashed every day

    full = audit(ledger, report_store, "niimi", against=report_store.get_anchor("niimi", date(2025, 6, 4)))
    assert [f.idm for f in full.failures] == [victim]
    shard = ledger_keys.shard(victim)
    by_shard = [audit(ledger, report_store, "niimi", against=report_store.get_anchor("niimi", date(2025, 6, 4)),
                      shard=n) for n in range(ledger_keys.SHARDS)]
    assert sum(r.cards for r in by_shard) == full.cards
    assert [n for n, r in enumerate(by_shard) if not r.ok] == [shard]
    if not rechained:
        set_entry_body(ledger.store, victim, 1, original)


def test_a_daily_run_killed_midway_resumes_with_the_shards_not_yet_done(ledger, clock, report_store, monkeypatch):
    idms = anchored_days(ledger, clock, report_store)
    for n, idm in enumerate(idms):
        ledger.spend(idm, 1, request_id=f"on-the-4th:{n}", actor=PAY)
    real, ran = audit_module.audit_piece, []

    def dies_after_three(*args, **kwargs):
        if len(ran) == 3:
            raise RuntimeError("the function timed out")
        ran.append(args[3])
        return real(*args, **kwargs)

    monkeypatch.setattr(audit_module, "audit_piece", dies_after_three)
    with pytest.raises(RuntimeError):
        run_audit(ledger, report_store, "niimi", date(2025, 6, 4), now=NOW)
    assert report_store.get_anchor("niimi", date(2025, 6, 4)) is None
    with pytest.raises(audit_module.AnchorIncomplete):
        audit_module.seal_anchor(report_store, "niimi", date(2025, 6, 4), now=NOW)
    monkeypatch.setattr(audit_module, "audit_piece", real)

    report = run_audit(ledger, report_store, "niimi", date(2025, 6, 4), now=NOW)
    assert report.ok and report.shards_adopted == 3
    anchor = report_store.get_anchor("niimi", date(2025, 6, 4))
    assert {h.idm: h.seq for h in report_store.anchor_heads(anchor)} == {
        idm: ledger.card(idm).seq for idm in [*idms, "0a00000000000fff"]}


def test_a_piece_with_a_budget_stops_with_a_cursor_and_resumes_from_it(ledger, clock, report_store):
    anchored_days(ledger, clock, report_store)
    shard = 5
    same_shard = [i for i in (f"0d{n:014x}" for n in range(400)) if ledger_keys.shard(i) == shard][:4]
    for n, idm in enumerate(same_shard):
        ledger.open_card(idm=idm, card_number=f"JW{900 + n:015d}", issuer_id="niimi")
        ledger.grant(idm, 100, request_id=f"new:{n}", actor=OPERATOR, source=Source.INITIAL)
    day = date(2025, 6, 4)

    cursor, calls, checked = None, 0, 0
    while True:
        piece = audit_module.audit_piece(ledger, report_store, "niimi", shard, day, cursor=cursor, max_cards=1)
        calls += 1
        checked += piece.cards
        if piece.done:
            break
        assert piece.cursor and not piece.failures
        if calls == 2:  # a worker killed after its checkpoint: the same cursor again
            again = audit_module.audit_piece(ledger, report_store, "niimi", shard, day, cursor=piece.cursor,
                                             max_cards=1)
            assert again.cursor != piece.cursor
        cursor = piece.cursor
    assert calls == len(same_shard) and checked == len(same_shard)  # each call stops at the next card
    part = report_store.shard_anchor("niimi", day, shard)
    for idm in same_shard:
        assert (idm, 1, ledger.card(idm).head) in [(h.idm, h.seq, h.head) for h in part.heads]
    assert audit_module.audit_piece(ledger, report_store, "niimi", shard, day).adopted  # once per shard and day


def test_the_cli_runs_the_daily_job_and_the_full_audit_by_shard(ledger, clock, report_store, monkeypatch, capsys):
    idms = cards_with_history(ledger, clock)
    monkeypatch.setattr(services, "ledger", lambda: ledger)
    monkeypatch.setattr(services, "report_store", lambda: report_store)

    assert cli(["daily", "--issuer", "niimi", "--workers", "4"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["ok"] and out["cards"] == len(idms) + 1
    shard = ledger_keys.shard(idms[0])
    assert cli(["audit", "--issuer", "niimi", "--shard", str(shard)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["shard"] == shard and out["cards"] == sum(ledger_keys.shard(i) == shard
                                                         for i in [*idms, "0a00000000000fff"])


def test_a_piece_out_of_time_stops_after_each_card_and_its_checkpoints_add_up(ledger, clock, report_store):
    idms = anchored_days(ledger, clock, report_store)
    for n, idm in enumerate(idms):
        ledger.spend(idm, 1, request_id=f"on-the-4th:{n}", actor=PAY)
    day, pieces = date(2025, 6, 4), 0
    for shard in range(ledger_keys.SHARDS):
        cursor = None
        while True:
            piece = audit_module.audit_piece(ledger, report_store, "niimi", shard, day, cursor=cursor,
                                             out_of_time=lambda: True)
            pieces += 1
            assert piece.cards <= 1 and not piece.failures
            if piece.done:
                break
            cursor = piece.cursor
    assert pieces == ledger_keys.SHARDS + len(idms) - len({ledger_keys.shard(i) for i in idms})
    anchor = audit_module.seal_anchor(report_store, "niimi", day, now=NOW)
    assert {h.idm: h.seq for h in report_store.anchor_heads(anchor)} == {
        idm: ledger.card(idm).seq for idm in [*idms, "0a00000000000fff"]}


def test_a_card_is_indexed_under_the_issuers_local_day_of_its_last_write(ledger, clock):
    clock.set(date(2025, 6, 2))
    idm = "0a0000000000abcd"
    ledger.open_card(idm=idm, card_number="JW000000000012345", issuer_id="niimi")
    shard = ledger_keys.shard(idm)
    assert list(ledger.cards_changed("niimi", date(2025, 6, 2), shard)) == [idm]
    clock.set(datetime(2025, 6, 2, 16, 30, tzinfo=timezone.utc))  # 01:30 JST on 3 June
    ledger.grant(idm, 10, request_id="late", actor=OPERATOR, source=Source.INITIAL)
    assert list(ledger.cards_changed("niimi", date(2025, 6, 2), shard)) == []
    assert list(ledger.cards_changed("niimi", date(2025, 6, 3), shard)) == [idm]
    assert list(ledger.cards_changed("okayama", date(2025, 6, 3), shard)) == []


def test_checking_since_an_anchor_accepts_a_card_read_before_it_moved_on(ledger, clock):
    idms = cards_with_history(ledger, clock)
    idm = idms[0]
    card = ledger.card(idm)
    anchored = (card.seq, card.head)
    read = ledger.card_record(idm)  # as a batch read it, a moment before the entries
    ledger.spend(idm, 1, request_id="meanwhile", actor=PAY)
    report = ledger.verify_since(idm, anchored, card=read)
    assert report.ok and (report.seq, report.head) == (card.seq + 1, ledger.card(idm).head)
    assert report.entries == 2  # the anchored entry's hash, the new entry

    forged = replace(read, card=replace(read.card, head="f" * 64))
    bad = ledger.verify_since(idm, anchored, card=forged)
    assert (bad.ok, bad.problem) == (False, "the card's chain head does not match its entries")
    assert not ledger.verify_since(idm, (card.seq, "f" * 64)).ok
    assert not ledger.verify_since(idm, (card.seq + 5, card.head)).ok  # shorter than anchored


def test_an_anchor_split_otherwise_or_without_shard_files_is_read_from_its_day_file(
    ledger, clock, report_store, monkeypatch
):
    idms = cards_with_history(ledger, clock)
    assert run_audit(ledger, report_store, "niimi", date(2025, 6, 2), now=NOW).ok
    real = report_store.shard_anchor

    def as_if_split_otherwise(issuer_id, day, shard_no):
        part = real(issuer_id, day, shard_no)
        if day != date(2025, 6, 2):
            return part
        return None if shard_no % 2 else replace(part, shards=part.shards * 4)

    real_header = report_store.shard_anchor_header

    def header_as_if_split_otherwise(issuer_id, day, shard_no):
        header = real_header(issuer_id, day, shard_no)
        if day != date(2025, 6, 2):
            return header
        return None if shard_no % 2 else {**header, "shards": header["shards"] * 4}

    monkeypatch.setattr(report_store, "shard_anchor", as_if_split_otherwise)
    monkeypatch.setattr(report_store, "shard_anchor_header", header_as_if_split_otherwise)
    clock.set(date(2025, 6, 3))
    ledger.spend(idms[1], 1, request_id="on-the-3rd", actor=PAY)
    report = run_audit(ledger, report_store, "niimi", date(2025, 6, 3), now=NOW)
    assert report.ok
    anchor = report_store.get_anchor("niimi", date(2025, 6, 3))
    assert {h.idm: h.seq for h in report_store.anchor_heads(anchor)} == {
        idm: ledger.card(idm).seq for idm in [*idms, "0a00000000000fff"]}


def test_a_large_day_file_is_spooled_to_disk_and_sent_locked_in_one_put(ledger, clock, report_store, s3, monkeypatch):
    from chalicelib.reports import store as store_module

    monkeypatch.setattr(store_module, "SPOOL_BYTES", 300)  # a few cards, then a file on disk
    idms = cards_with_history(ledger, clock)
    anchor = take_anchor(ledger, report_store, "niimi", date(2025, 6, 2), now=NOW)
    assert s3.head_object(Bucket=ANCHORS, Key=anchor.object_key)["ObjectLockMode"] == "COMPLIANCE"
    data = json.loads(s3.get_object(Bucket=ANCHORS, Key=anchor.object_key)["Body"].read())
    heads = [ChainHead(*row) for row in data["cards"]]
    assert anchor_digest("niimi", date(2025, 6, 2), heads) == anchor.digest == data["digest"]
    assert sorted([*idms, "0a00000000000fff"]) == [h.idm for h in heads]


def test_a_new_card_broken_before_its_first_anchor_stays_in_the_anchor_for_the_full_audit(
    ledger, clock, report_store
):
    idms = anchored_days(ledger, clock, report_store)
    new = "0a0000000000beef"
    ledger.open_card(idm=new, card_number="JW000000000077777", issuer_id="niimi")
    ledger.grant(new, 50, request_id="new-card", actor=OPERATOR, source=Source.INITIAL)
    original = set_entry_body(ledger.store, new, 1, "{}")

    daily = run_audit(ledger, report_store, "niimi", date(2025, 6, 4), now=NOW)
    assert [(f.idm, f.bad_seq) for f in daily.failures] == [(new, 1)]
    anchor = report_store.get_anchor("niimi", date(2025, 6, 4))
    held = {h.idm: (h.seq, h.head) for h in report_store.anchor_heads(anchor)}
    assert held[new] == (0, "0" * 64) and len(held) == len(idms) + 2
    assert [f.idm for f in audit(ledger, report_store, "niimi", against=anchor).failures] == [new]
    set_entry_body(ledger.store, new, 1, original)
