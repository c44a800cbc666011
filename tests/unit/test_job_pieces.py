"""The job runner's pieces (chalicelib/jobs/runner.py), pure: a message says everything a
worker needs, the parts of a day cover its shards once, a budget and a stop count keys."""

from __future__ import annotations

from datetime import date

import pytest

from chalicelib.job_progress import JobInterrupted
from chalicelib.jobs.runner import MAX_PIECES, Budget, MemoryQueue, Piece, Stop


@pytest.mark.parametrize("after", [None, (3, "0a00000000000001")])
def test_a_piece_goes_through_its_message_unchanged(after):
    piece = Piece("expiry", "niimi", date(2023, 4, 24), date(2023, 4, 20), date(2023, 4, 23), 2, 4, after)
    assert Piece.parse(piece.body()) == piece


@pytest.mark.parametrize("shards", [16, 64])
@pytest.mark.parametrize("parts", [1, 3, 8, 16])
def test_the_parts_of_a_day_take_each_shard_once(shards, parts):
    taken = [s for p in range(parts) for s in Piece("j", "i", date.min, date.min, date.min, p, parts).shards(shards)]
    assert taken == list(range(shards))
    assert parts <= MAX_PIECES


def test_a_budget_of_keys_and_a_stop_count_keys():
    budget = Budget(keys=2)
    assert [budget.spend(), budget.spend()] == [False, True]
    assert not Budget().spend()  # no deadline, no count: never spent
    stop = Stop(after=2)
    stop.tick()
    with pytest.raises(JobInterrupted):
        stop.tick()


def test_the_memory_queue_hands_each_message_out_once():
    queue = MemoryQueue()
    queue.send(["a", "b", "c"])
    assert [m.body for m in queue.receive(2)] + [m.body for m in queue.receive(5)] == ["a", "b", "c"]
    assert queue.receive(1) == []
