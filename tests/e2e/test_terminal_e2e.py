"""End to end: the agent taps a card emulated by nfcpy's UDP driver in another process,
signs its requests, and talks to the API served by `chalice local` on moto's server
(both started by `python -m localdev.run`, as `make run` does)."""

from __future__ import annotations

import dataclasses
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from localdev.demo import FRESH
from terminal_agent.agent import Agent
from terminal_agent.card import CardReader
from terminal_agent.config import AgentConfig
from terminal_agent.emulator import spawned

ROOT = Path(__file__).resolve().parents[2]
DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))
STARTUP_LIMIT_S = 90


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(check, what: str, limit_s: float = STARTUP_LIMIT_S) -> None:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"{what} did not happen within {limit_s} s")


def healthy(url: str) -> bool:
    try:
        with DIRECT.open(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """`python -m localdev.run` on free ports; yields the folder with the agent configs."""
    state = tmp_path_factory.mktemp("state")
    api_port, moto_port, mail_port = free_port(), free_port(), free_port()
    env = {**os.environ, "CHIIKI_API_PORT": str(api_port), "CHIIKI_MOTO_PORT": str(moto_port),
           "CHIIKI_MAIL_PORT": str(mail_port),
           "CHIIKI_STATE_DIR": str(state)}
    proc = subprocess.Popen([sys.executable, "-m", "localdev.run"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: proc.poll() is not None or healthy(f"http://127.0.0.1:{api_port}/api/health"),
                   "the local stack starting")
        assert proc.poll() is None, "localdev.run exited"
        (state / "moto_port").write_text(str(moto_port))
        (state / "api_port").write_text(str(api_port))
        yield state
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture
def card(tmp_path):
    """The demo card (5,000 pt) emulated in its own process, its e-money balance 3,000 yen."""
    with spawned(free_port(socket.SOCK_DGRAM), FRESH.idm, balance=3000, seq=120) as device:
        yield device


def agent_for(stack: Path, device: str, tmp_path: Path) -> Agent:
    config = AgentConfig.load(stack / "agent-store.json")
    return Agent(dataclasses.replace(config, device=device, queue_path=tmp_path / "queue.sqlite"))


def test_a_store_terminal_checks_a_balance_takes_a_partial_point_payment_and_records_emoney(stack, card, tmp_path):
    agent = agent_for(stack, card, tmp_path)
    with CardReader(card) as reader:
        tapped = reader.tap(timeout_s=10)
        assert tapped is not None and tapped.idm == FRESH.idm
        assert (tapped.emoney_balance, tapped.last_seq) == (3000, 120)
        shown = agent.balance(tapped)
        assert shown["balance"] == 5000 and shown["lots"][0]["points"] == 5000

        paid = agent.pay_points(reader.tap(timeout_s=10), 5200, allow_shortfall=True)
        assert (paid["spent"], paid["shortfall"], paid["balance"]) == (5000, 200, 0)

        tapped = reader.tap(timeout_s=10)
        recorded = agent.record_emoney(tapped, 1200)
        assert not recorded.queued
        assert (recorded.result["recorded"], recorded.result["card_seq"], recorded.result["duplicate"]) == (
            "emoney_payment", tapped.last_seq, False)
        again = agent.record_emoney(tapped, 1200)  # the same card transaction reported twice
        assert again.result["duplicate"] is True

        assert agent.balance(reader.tap(timeout_s=10))["balance"] == 0
    agent.close()


def test_the_demo_tap_command_make_run_prints(stack):
    env = {**os.environ, "CHIIKI_STATE_DIR": str(stack), "CHIIKI_CARD_PORT": str(free_port(socket.SOCK_DGRAM))}
    done = subprocess.run([sys.executable, "-m", "localdev.tap", "--op", "balance"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "残高" in done.stdout and "電子マネー" in done.stdout


def test_every_job_runs_by_hand_against_make_run_and_finds_the_demo_work(stack):
    env = {**os.environ, "CHIIKI_MOTO_PORT": (stack / "moto_port").read_text()}
    done = subprocess.run([sys.executable, "-m", "localdev.jobs", "all"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    lines = {": ".join(line.split(": ")[:2]).split(" as of ")[0]: line for line in done.stdout.splitlines()}
    assert "points 300" in lines["niimi: expiry"]  # the demo lot that ended yesterday
    assert "points 80" in lines["niimi: rebate"]  # 8,000 yen two months ago at 1 %
    assert "points 5000" in lines["niimi: campaigns"]  # 21,000 yen charged: the cap
    assert "points 1000" in lines["niimi: dormancy"]  # 60 months without a grant or spend
    assert "niimi: reminders" in lines  # nobody has signed up with the demo card yet
    assert "skipped False" in lines["niimi: reports"] and "settlement" in lines["niimi: reports"]  # last month's
    assert "failures none" in lines["niimi: audit"] and "anchor_problem None" not in lines["niimi: audit"]
    again = subprocess.run([sys.executable, "-m", "localdev.jobs", "rebate"], cwd=ROOT, env=env,
                           capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and "points 0" in again.stdout  # exactly once


def test_a_csv_dropped_by_hand_is_imported_and_the_admin_cli_shows_the_new_card(stack, tmp_path):
    env = {**os.environ, "CHIIKI_MOTO_PORT": (stack / "moto_port").read_text()}
    cards = tmp_path / "cards.csv"
    cards.write_text("\ufeffcard_number,idm,birth_date,points,granted_on\n"
                     "JW019900000000001,0199000000000001,1960-05-05,3000,2026-11-01\n"
                     "JW01990000000000X,0199000000000002,1960-05-05,3000,2026-11-01\n", encoding="utf-8")
    dropped = subprocess.run([sys.executable, "-m", "localdev.imports", str(cards), "niimi/cards/by-hand.csv"],
                             cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert dropped.returncode == 0, dropped.stderr
    assert "imported 1" in dropped.stdout and "rejected 1" in dropped.stdout and "row 3:" in dropped.stdout

    api = f"http://127.0.0.1:{(stack / 'api_port').read_text()}"
    shown = subprocess.run([sys.executable, "-m", "tools.admin", "--api", api, "--issuer", "niimi",
                            "card", "show", "JW019900000000001"], cwd=ROOT, env=env,
                           capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0, shown.stderr
    assert "Balance 3,000 pt" in shown.stdout
