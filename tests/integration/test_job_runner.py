"""The job runner (chalicelib/jobs/runner.py) on moto: a work day split in parts ends as
one piece does; a piece whose budget runs out queues its remainder; a worker killed
outright is followed, on SQS's second offer, from its checkpoint; several workers and two
runs at once do each card once; deployed, the schedule only queues pieces and the
run-job-piece function does them, through moto's SQS."""

from __future__ import annotations

import threading
from datetime import date

import pytest

from chalicelib.job_progress import JobInterrupted, JobState
from chalicelib.jobs import runner as runner_module
from chalicelib.jobs import store as job_store
from chalicelib.jobs.expiry import JOB, ExpiryJob, run_expiry
from chalicelib.jobs.runner import Budget, MemoryQueue, Piece, Runner, Stop
from chalicelib.ledger import keys
from chalicelib.ledger.domain import Op
from tests.integration.test_expiry_job import DAY_AFTER, LAST_DAY, expire_entries, open_card

CARDS = 40


def cards(ledger, clock, issuer: str = "niimi") -> list[str]:
    return [open_card(ledger, clock, n, issuer=issuer) for n in range(1, CARDS + 1)]


def runner(ledger, queue=None, pieces: int = 1) -> Runner:
    state = JobState()
    return Runner({JOB: lambda: ExpiryJob(ledger, state)}, queue or MemoryQueue(), state, pieces=lambda _: pieces)


def assert_expired_once(ledger, idms: list[str]) -> None:
    for idm in idms:
        assert len(expire_entries(ledger, idm)) == 1
        assert ledger.totals(idm)[Op.EXPIRE] == 5000
        assert ledger.balance(idm).balance == 0


@pytest.mark.parametrize("pieces", [2, 4, keys.SHARDS])
def test_a_day_in_parts_run_by_several_workers_ends_as_one_piece(ledger, store, clock, pieces):
    idms = cards(ledger, clock)
    clock.set(DAY_AFTER)
    report = runner(ledger, pieces=pieces).run_here(JOB, "niimi", DAY_AFTER, LAST_DAY, workers=4)
    assert (report.days, report.cards, report.points) == ([LAST_DAY], CARDS, CARDS * 5000)
    assert_expired_once(ledger, idms)
    assert JobState().last_done(JOB, "niimi") == LAST_DAY
    assert job_store.parts_done(JOB, "niimi", DAY_AFTER, LAST_DAY) == set(range(pieces))


def test_a_piece_whose_budget_runs_out_queues_its_remainder(ledger, store, clock):
    idms = cards(ledger, clock)
    clock.set(DAY_AFTER)
    queue = MemoryQueue()
    sent: list[str] = []
    send = queue.send
    queue.send = lambda bodies: (sent.extend(bodies), send(bodies))[1]
    report = runner(ledger, queue, pieces=2).run_here(JOB, "niimi", DAY_AFTER, LAST_DAY,
                                                     budget=lambda: Budget(keys=3))
    assert (report.days, report.cards) == ([LAST_DAY], CARDS)
    assert_expired_once(ledger, idms)
    resumed = [Piece.parse(body) for body in sent if Piece.parse(body).after is not None]
    assert len(resumed) >= CARDS // 3 - 2  # each piece took three cards, then sent the rest on


def test_several_days_are_done_in_order_each_fanned_out(ledger, store, clock):
    early = open_card(ledger, clock, 100, grants=((date(2022, 10, 20), 70),))  # due 2023-04-19
    idms = cards(ledger, clock)
    clock.set(DAY_AFTER)
    report = runner(ledger, pieces=4).run_here(JOB, "niimi", DAY_AFTER, date(2023, 4, 15), workers=3)
    assert report.days == [date(2023, 4, d) for d in range(15, 24)]
    assert report.points == CARDS * 5000 + 70
    assert ledger.totals(early)[Op.EXPIRE] == 70
    assert_expired_once(ledger, idms)
    assert JobState().last_done(JOB, "niimi") == LAST_DAY


def test_a_killed_worker_is_followed_from_its_checkpoint_when_sqs_offers_the_piece_again(
    ledger, store, clock, monkeypatch
):
    idms = cards(ledger, clock)
    clock.set(DAY_AFTER)
    monkeypatch.setattr(runner_module, "CHECKPOINT_EVERY", 5)
    the_runner = runner(ledger)
    piece = Piece(JOB, "niimi", DAY_AFTER, LAST_DAY, LAST_DAY, 0, 1)
    with pytest.raises(JobInterrupted):
        the_runner.run_piece(piece, stop=Stop(after=12))  # killed after 12 cards, checkpointed at 10
    checkpoint = job_store.checkpoint(piece)
    assert checkpoint is not None
    listed_before = sorted((keys.shard(i), i) for i in idms)
    assert listed_before.index(checkpoint) == 9

    result = the_runner.run_piece(piece, redelivered=True)
    # From the checkpoint on; the two done after it have left the index (nothing to expire).
    assert result.day_done and result.report.cards == CARDS - 12
    assert_expired_once(ledger, idms)
    assert JobState().last_done(JOB, "niimi") == LAST_DAY


def test_a_run_killed_part_way_then_run_again_expires_each_card_once(ledger, store, clock):
    idms = cards(ledger, clock)
    clock.set(DAY_AFTER)
    with pytest.raises(JobInterrupted):
        runner(ledger, pieces=4).run_here(JOB, "niimi", DAY_AFTER, LAST_DAY, workers=2, stop=Stop(after=15))
    assert JobState().last_done(JOB, "niimi") is None
    again = runner(ledger, pieces=4).run_here(JOB, "niimi", DAY_AFTER, LAST_DAY, workers=2)
    assert again.days == [LAST_DAY]
    assert again.cards < CARDS  # the parts done before are not run again
    assert_expired_once(ledger, idms)


def test_two_runs_at_once_with_several_workers_each_expire_each_card_once(ledger, store, clock):
    idms = cards(ledger, clock)
    clock.set(DAY_AFTER)
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def go() -> None:
        try:
            barrier.wait()
            run_expiry(ledger, "niimi", state=JobState(), on=DAY_AFTER, since=date(2023, 4, 15),
                       runner=runner(ledger, pieces=8), workers=3)
        except BaseException as exc:  # noqa: BLE001  (reported by the test thread)
            errors.append(exc)

    threads = [threading.Thread(target=go) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert_expired_once(ledger, idms)
    assert JobState().last_done(JOB, "niimi") == LAST_DAY


def test_deployed_the_schedule_queues_pieces_and_the_worker_function_runs_them(
    ledger, store, clock, aws, monkeypatch
):
    """Through moto's SQS: the schedule (as in Lambda) only coordinates; the run-job-piece
    function, given the queue's messages as Lambda's event source would, does the work."""
    from datetime import datetime, timezone

    from chalice.test import Client

    from app import app
    from chalicelib import services
    from chalicelib.settings import get_settings
    from localdev.mail_queue import lambda_record

    idms = cards(ledger, clock)
    ledger.change_issuer("niimi", job_pieces=4)
    monkeypatch.setattr(services, "ledger", lambda: ledger)
    monkeypatch.setattr(services, "settings", lambda: __import__("dataclasses").replace(get_settings(),
                                                                                         jobs_here=False))
    JobState().mark_done(JOB, "okayama", LAST_DAY)
    clock.now = datetime(2023, 4, 23, 15, 5, tzinfo=timezone.utc)  # 2023-04-24 in Tokyo
    sqs = aws.client("sqs")
    url = sqs.create_queue(QueueName=get_settings().jobs_queue)["QueueUrl"]  # infra/ makes it, deployed
    with Client(app) as client:
        client.lambda_.invoke("expire-points", client.events.generate_cw_event(
            source="aws.events", detail_type="Scheduled Event", detail={}, resources=[]))
        assert not any(expire_entries(ledger, i) for i in idms)  # nothing done yet: queued
        invocations = 0
        while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1,
                                              AttributeNames=["ApproximateReceiveCount"]).get("Messages"):
            answer = client.lambda_.invoke("run-job-piece", {"Records": [lambda_record(m) for m in messages]})
            assert answer.payload == {"batchItemFailures": []}
            sqs.delete_message(QueueUrl=url, ReceiptHandle=messages[0]["ReceiptHandle"])
            invocations += 1
    assert invocations >= 4  # the last work day's four parts, and the days before it, in order
    assert_expired_once(ledger, idms)
    assert JobState().last_done(JOB, "niimi") == LAST_DAY
