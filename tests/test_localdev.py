"""`make run`: the local stack starts and serves the API, and its demo data is what the
banner promises and loads idempotently."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import date
from pathlib import Path

from chalicelib.ledger.domain import Op, Source, expiry_date
from chalicelib.ledger.service import Ledger
from localdev.demo import FRESH, WORKED, load_demo

ROOT = Path(__file__).resolve().parent.parent
STARTUP_LIMIT_S = 60
# Straight to 127.0.0.1, whatever proxy the shell names.
DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:  # all held open at once, so the ports differ
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def get_json(url: str) -> dict:
    with DIRECT.open(url, timeout=5) as response:
        return json.loads(response.read())


def wait_for(url: str, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + STARTUP_LIMIT_S
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"localdev.run exited with {proc.returncode}"
        try:
            get_json(url)
            return
        except (urllib.error.URLError, OSError):
            time.sleep(0.3)
    raise AssertionError(f"{url} did not answer within {STARTUP_LIMIT_S} s")


def test_make_run_serves_the_api_and_stops_cleanly(tmp_path):
    api_port, moto_port, mail_port = free_ports(3)
    env = {**os.environ, "CHIIKI_API_PORT": str(api_port), "CHIIKI_MOTO_PORT": str(moto_port),
           "CHIIKI_MAIL_PORT": str(mail_port), "CHIIKI_STATE_DIR": str(tmp_path),
           "PYTHONUNBUFFERED": "1"}
    log = tmp_path / "run.log"
    api = f"http://127.0.0.1:{api_port}"
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "localdev.run"], cwd=ROOT, env=env,
                                stdout=out, stderr=subprocess.STDOUT)
        try:
            wait_for(f"{api}/api/health", proc)
            assert get_json(f"{api}/api/issuers/niimi")["point_name"] == "にーみんポイント"
            # The signup only queues its mail; the outbox shows it once the request has answered.
            # MyPage keys its hashes with the stage secret, read from moto's Secrets Manager
            # at run time as a deployed API reads it.
            signup = urllib.request.Request(f"{api}/api/mypage/v1/signup/start", method="POST",
                                            data=json.dumps({"email": "hanako@example.jp"}).encode(),
                                            headers={"Content-Type": "application/json"})
            with DIRECT.open(signup, timeout=10) as response:
                assert response.status == 202
            (mail,) = get_json(f"http://127.0.0.1:{mail_port}/messages.json")
            assert mail["to"] == ["hanako@example.jp"] and "確認コード" in mail["body"]
        finally:
            proc.terminate()  # SIGTERM to its pid: it stops chalice and moto itself
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    printed = log.read_text()
    assert proc.returncode == 0, printed
    for shown in (f"{api}/api/issuers/niimi", f"http://127.0.0.1:{moto_port}", FRESH.card_number,
                  FRESH.birth_date, WORKED.card_number, WORKED.birth_date, "Ctrl-C", "Stopped"):
        assert shown in printed


def snapshot(ledger: Ledger) -> dict:
    store = ledger.store
    return {idm: (store.get_card(idm), list(store.entries(idm))) for idm in store.card_ids()}


def test_demo_loader_is_idempotent(ledger):
    first = load_demo(ledger.store)
    before = snapshot(ledger)
    second = load_demo(ledger.store)
    assert snapshot(ledger) == before
    assert set(before) == {FRESH.idm, WORKED.idm}
    assert [(c.shows, c.steps) for c in second] == [(c.shows, c.steps) for c in first]


def test_fresh_card_has_5000_points_today(ledger):
    load_demo(ledger.store)
    today = Ledger(ledger.store)  # the real clock: "today" is the day the loader ran
    view = today.balance(FRESH.idm)
    assert view.balance == 5000
    [lot] = view.lots
    assert (lot.valid_from, lot.expires_on, lot.source) == (view.day, expiry_date(view.day, 6), Source.INITIAL)


def test_worked_example_card_replays_spec_11(ledger):
    load_demo(ledger.store)
    assert ledger.balance(WORKED.idm, on=date(2023, 4, 24)).balance == 0
    [rebate_lot] = ledger.card(WORKED.idm).lots  # the used-up, lapsed initial lot is gone
    assert (rebate_lot.source, rebate_lot.amount, rebate_lot.remaining) == (Source.REBATE, 123, 0)
    entries = list(reversed(ledger.history(WORKED.idm).entries))
    initial, rebate, spend, shortfall = entries
    assert (initial.day, initial.result["expires_on"]) == (date(2022, 10, 24), "2023-04-23")
    assert (rebate.day, rebate.actor.kind, rebate.result["expires_on"]) == (date(2022, 11, 30), "job", "2023-05-29")
    assert spend.day == date(2023, 4, 1) and spend.actor.merchant is not None
    assert [(m.op, m.amount) for m in spend.movements] == [(Op.SPEND, 5000), (Op.SPEND, 50)]
    assert spend.result["balance"] == 73
    assert shortfall.day == date(2023, 4, 24)
    assert {k: shortfall.result[k] for k in ("requested", "spent", "shortfall", "balance")} == {
        "requested": 100, "spent": 73, "shortfall": 27, "balance": 0}
