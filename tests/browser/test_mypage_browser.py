"""A resident's MyPage in Debian Chromium through Playwright, against `make run`'s stack
(the PWA and the API on one origin, moto for DynamoDB and SES, the local outbox):
signup → the code from the outbox → the demo card linked → balance 5,000 with its expiry
→ a point payment at a store terminal changes history and balance → offline reload shows
the last known balance and the offline notice → logout. Screenshots go to
artifacts/browser/."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

from localdev.demo import FRESH

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "artifacts" / "browser"
CHROMIUM = "/usr/bin/chromium"
DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"]

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian chromium is installed by make test")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(url: str):
    with DIRECT.open(url, timeout=5) as response:
        return json.loads(response.read())


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """`python -m localdev.run` on free ports: (origin, outbox URL, state dir)."""
    state = tmp_path_factory.mktemp("state")
    ports = {"CHIIKI_API_PORT": free_port(), "CHIIKI_MOTO_PORT": free_port(), "CHIIKI_MAIL_PORT": free_port()}
    env = {**os.environ, **{k: str(v) for k, v in ports.items()}, "CHIIKI_STATE_DIR": str(state)}
    proc = subprocess.Popen([sys.executable, "-m", "localdev.run"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    origin = f"http://127.0.0.1:{ports['CHIIKI_API_PORT']}"
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                get_json(origin + "/api/health")
                break
            except OSError:
                time.sleep(0.3)
        else:
            pytest.fail("the local stack did not start")
        yield origin, f"http://127.0.0.1:{ports['CHIIKI_MAIL_PORT']}", state
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def code_from_outbox(outbox: str, email: str) -> str:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        for message in get_json(outbox + "/messages.json"):
            if email in message["to"]:
                return re.search(r"確認コード: (\d{4})", message["body"]).group(1)
        time.sleep(0.2)
    raise AssertionError("no code in the outbox")


def pay_at_store(state: Path, points: int) -> dict:
    """A point payment through the terminal service, signed by the demo store terminal."""
    from terminal_agent.client import ApiClient
    from terminal_agent.config import AgentConfig

    client = ApiClient(AgentConfig.load(state / "agent-store.json"))
    try:
        return client.post("/api/terminal/v1/point-payments",
                           {"request_id": str(uuid.uuid4()), "idm": FRESH.idm, "amount": points})
    finally:
        client.close()


def test_a_resident_signs_up_sees_her_points_and_keeps_them_offline(site):
    from playwright.sync_api import expect, sync_playwright

    origin, outbox, state = site
    shutil.rmtree(SHOTS, ignore_errors=True)
    SHOTS.mkdir(parents=True)
    email = "hanako@example.jp"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        context = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2,
                                      locale="ja-JP", timezone_id="Asia/Tokyo")
        page = context.new_page()
        page.set_default_timeout(15_000)
        shot = lambda name: page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)  # noqa: E731

        page.goto(origin + "/")
        page.get_by_role("link", name="はじめての方（利用登録）").click()
        page.get_by_label("メールアドレス").fill(email)
        shot("1-signup-email")
        page.get_by_role("button", name="確認コードを送る").click()

        code_field = page.get_by_label("確認コード（4桁の数字）")
        expect(code_field).to_be_visible()
        code_field.fill(code_from_outbox(outbox, email))
        page.get_by_role("button", name="次へ").click()

        page.get_by_label("カード番号").fill(FRESH.card_number)
        year, month, day = FRESH.birth_date.split("-")
        page.get_by_label("年", exact=True).fill(year)
        page.get_by_label("月", exact=True).fill(month)
        page.get_by_label("日", exact=True).fill(day)
        shot("2-signup-card")
        page.get_by_role("button", name="次へ").click()

        page.get_by_label("パスワード", exact=True).fill("correct horse 1")
        page.get_by_label("パスワード（確認のため、もう一度）").fill("correct horse 1")
        page.get_by_role("button", name="登録する").click()

        balance = page.locator(".bal .num").first
        expect(balance).to_have_text("5,000 pt")
        expect(page.get_by_text(re.compile(r"\d{4}年\d{1,2}月\d{1,2}日まで"))).to_be_visible()
        shot("3-balance")

        assert pay_at_store(state, 1200)["balance"] == 3800
        page.reload()
        expect(balance).to_have_text("3,800 pt")
        page.get_by_role("link", name=re.compile("履歴")).first.click()
        expect(page.get_by_text("ポイント利用（にいみ精肉店）")).to_be_visible()
        shot("4-history")

        page.goto(origin + "/#/cards")
        expect(balance).to_have_text("3,800 pt")
        context.set_offline(True)
        page.reload()
        expect(page.get_by_text(re.compile("オフラインです"))).to_be_visible()
        expect(page.locator(".bal .num").first).to_have_text("3,800 pt")
        expect(page.get_by_text(re.compile("最終更新"))).to_be_visible()
        shot("5-offline")
        context.set_offline(False)

        page.reload()
        expect(page.locator(".bal .num").first).to_have_text("3,800 pt")
        page.get_by_role("button", name="ログアウト").click()
        expect(page.get_by_role("heading", name="ログイン")).to_be_visible()
        shot("6-logged-out")
        browser.close()
