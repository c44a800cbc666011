"""The clerk's text UI driven by a script, the Japanese messages, and the command line
(one test taps the emulated ICOCA card over nfcpy's UDP driver)."""

from __future__ import annotations

import json
import re
import socket
import sqlite3
from pathlib import Path

import pytest

from chalicelib.errors import ChiikiError
from chalicelib.terminals import signatures
from terminal_agent.__main__ import main
from terminal_agent.card import CardRead
from terminal_agent.emulator import CardEmulator, EmulatedCard
from terminal_agent.messages import FALLBACK, MESSAGES, describe, message
from terminal_agent.signing import KeyFileExposed
from terminal_agent.ui import TerminalUI

from .chalice_adapter import World, session_for
from .conftest import IDM, OKA_IDM

CARD = CardRead(IDM, 1234, 41, None)
TAP_TIMEOUT_S = 10


class FakeReader:
    """Hands out the given reads, one per tap; None once they run out (no card came)."""

    def __init__(self, *reads: CardRead | None) -> None:
        self.reads = list(reads)
        self.taps = 0
        self.closed = False

    def tap(self, timeout_s: float = 10.0) -> CardRead | None:
        self.taps += 1
        return self.reads.pop(0) if self.reads else None

    def close(self) -> None:
        self.closed = True


def drive(agent, reader, *answers: str) -> list[str]:
    """Run the UI on scripted answers (EOF after the last); the lines it showed."""
    script = list(answers)
    shown: list[str] = []

    def ask(prompt: str) -> str:
        shown.append(prompt)
        if not script:
            raise EOFError
        return script.pop(0)

    TerminalUI(agent, reader, ask=ask, show=shown.append).run()
    return shown


def test_balance_shows_points_each_lot_with_its_expiry_and_the_card_e_money(world, ledger):
    shown = drive(world.agent("store"), FakeReader(CARD), "1", "q")
    (lot,) = ledger.balance(IDM).lots
    assert "カードをタッチしてください" in shown
    assert "残高: 5,000 pt" in shown
    assert f"  5,000 pt（{lot.expires_on.isoformat()} まで）" in shown
    assert "電子マネー残高: 1,234 円" in shown
    assert shown[-1] == "終了します"


def test_a_payment_with_shortfall_shows_the_cash_to_collect(world, ledger):
    shown = drive(world.agent("store"), FakeReader(CARD), "3", "６，０００", "q")  # full-width, as typed on a JP IME
    assert "ポイント支払い: 5,000 pt" in shown
    assert "不足額: 1,000 円（現金でお受け取りください）" in shown
    assert "残高: 0 pt" in shown
    assert ledger.balance(IDM).balance == 0


def test_a_refusal_shows_the_japanese_message(world, ledger):
    shown = drive(world.agent("store"), FakeReader(CARD, CardRead(OKA_IDM, None, None, None)),
                  "2", "6000", "1", "q")
    assert "ポイントが不足しています（残高 5,000 pt）" in shown
    assert "このカードはこの店舗ではご利用いただけません" in shown
    assert ledger.balance(IDM).balance == 5000


def test_a_payment_is_cancelled_from_the_list_of_this_cards_payments(world, ledger):
    shown = drive(world.agent("store"), FakeReader(CARD, CARD), "2", "1200", "4", "1", "q")
    assert "ポイント支払い: 1,200 pt" in shown
    assert any(re.fullmatch(r"1\. \d\d:\d\d 1,200 pt（取引番号 [0-9a-f]{8}…）", line) for line in shown)
    assert "ポイント支払いを取り消しました: 1,200 pt" in shown
    assert ledger.balance(IDM).balance == 5000


def test_a_bad_amount_is_asked_again_and_no_card_is_reported(world):
    reader = FakeReader()
    shown = drive(world.agent("store"), reader, "2", "0", "abc", "100", "9", "q")
    assert shown.count(MESSAGES["invalid_amount"]) == 2
    assert "カードが読み取れませんでした。もう一度お試しください" in shown
    assert "1〜6 の番号を入力してください" in shown
    assert reader.taps == 1


def test_an_e_money_payment_offline_is_saved_and_sent_from_the_menu(world, terminal_service):
    agent = world.agent("store")
    world.adapter.down = True
    shown = drive(agent, FakeReader(CARD), "5", "1000", "q")
    assert "通信できません。電子マネー記録は保存し、後で送信します" in shown
    assert "電子マネー残高: 1,234 円" in shown
    assert "s. 未送信の記録を送信（1 件）" in shown
    world.adapter.down = False
    shown = drive(agent, FakeReader(), "s", "q")
    assert "送信: 1 件、受付不可: 0 件、未送信: 0 件" in shown
    assert terminal_service.store.get_txn(IDM, 41)[0].amount == 1000


def test_an_e_money_payment_is_recorded_and_cancelled_by_its_sequence_number(world, terminal_service):
    shown = drive(world.agent("store"), FakeReader(CARD, CARD), "5", "1000", "6", "", "q")
    assert "電子マネー支払い 1,000 円 を記録しました（履歴番号 41）" in shown
    assert "電子マネー支払いの取消を記録しました: 1,000 円" in shown
    assert terminal_service.store.get_txn(IDM, 41)[0].cancelled


def test_each_mode_has_its_own_menu(world):
    charger = drive(world.agent("charger"), FakeReader(CARD), "2", "2000", "q")
    assert "1. 残高照会" in charger and "2. チャージ記録" in charger
    assert "チャージ 2,000 円 を記録しました（履歴番号 41）" in charger
    event = drive(world.agent("event"), FakeReader(CARD, CARD), "1", "1", "q")
    assert "健康ウォーク: 500 pt を付与しました" in " ".join(event)
    assert "このカードは既にチェックイン済みです" in event


# -- messages -----------------------------------------------------------------------------


def server_codes() -> set[str]:
    """Every error code the terminal API can answer with: the ledger's and terminals' error
    classes, and the codes the signature check names (operator-only errors, such as the
    campaigns', never reach a terminal)."""
    import chalicelib.ledger.errors  # noqa: F401 - registers the ledger's error classes
    import chalicelib.terminals.errors  # noqa: F401 - registers the terminal error classes

    codes, classes = set(), [ChiikiError]
    while classes:
        cls = classes.pop()
        # not test stand-ins, nor other contexts' errors (chalicelib.errors: "busy"; the
        # shared root itself is never raised)
        if cls is not ChiikiError and cls.__module__.startswith(
                ("chalicelib.errors", "chalicelib.ledger.", "chalicelib.terminals.")):
            codes.add(cls.code)
        classes += cls.__subclasses__()
    source = Path(signatures.__file__).read_text(encoding="utf-8")
    codes |= set(re.findall(r'code="([a-z_]+)"', source))
    return codes


def test_every_server_error_code_has_a_japanese_message():
    codes = server_codes()
    assert {"insufficient_points", "wrong_issuer", "missing_nonce", "stale_signature", "busy"} <= codes
    assert codes - MESSAGES.keys() == set()
    for text in MESSAGES.values():
        assert re.search(r"[\u3040-\u30ff\u4e00-\u9fff]", text)


def test_messages_format_numbers_and_fall_back_for_unknown_codes():
    assert message("insufficient_points", balance=12345) == "ポイントが不足しています（残高 12,345 pt）"
    assert message("insufficient_points") == "ポイントが不足しています"
    assert message("brand_new_code") == FALLBACK.format(code="brand_new_code")
    assert describe(ValueError("x")) == FALLBACK.format(code="ValueError")


# -- the command line -----------------------------------------------------------------------


def write_config(world: World, name: str, **changes) -> Path:
    path = world.folder / f"agent-{name}.json"
    world.config(name, **changes).save(path)
    return path


def test_tap_prints_the_japanese_result_and_closes_the_reader(world):
    config = write_config(world, "store")
    reader, out = FakeReader(CARD), []
    code = main(["tap", "--config", str(config), "--op", "pay", "--amount", "6000", "--shortfall"],
                open_reader=lambda device: reader, session=session_for(world.adapter), out=out.append)
    assert code == 0
    assert "不足額: 1,000 円（現金でお受け取りください）" in out
    assert reader.closed


def test_tap_exit_codes_for_a_refusal_and_for_no_card(world):
    config = write_config(world, "store")
    out = []
    argv = ["tap", "--config", str(config), "--op", "pay", "--amount", "6000"]
    assert main(argv, open_reader=lambda d: FakeReader(CARD), session=session_for(world.adapter), out=out.append) == 1
    assert out[-1] == "ポイントが不足しています（残高 5,000 pt）"
    assert main(argv, open_reader=lambda d: FakeReader(), session=session_for(world.adapter), out=out.append) == 3


def test_flush_command_sends_what_was_queued(world, terminal_service):
    world.adapter.down = True
    world.agent("store").record_emoney(CARD, 800)
    world.adapter.down = False
    out = []
    config = write_config(world, "store")
    assert main(["flush", "--config", str(config)], session=session_for(world.adapter), out=out.append) == 0
    assert out == ["送信: 1 件、受付不可: 0 件、未送信: 0 件"]
    assert terminal_service.store.get_txn(IDM, 41)[0].amount == 800


def test_keygen_writes_a_private_key_once(tmp_path, capsys):
    key, out = tmp_path / "terminal.pem", []
    assert main(["keygen", "--key", str(key), "--terminal-id", "T-0001"], out=out.append) == 0
    assert key.stat().st_mode & 0o777 == 0o600
    assert "端末ID: T-0001" in out and out[-1].endswith("-----END PUBLIC KEY-----")
    before = key.read_bytes()
    assert main(["keygen", "--key", str(key)], out=out.append) == 2
    assert "already exists" in capsys.readouterr().err
    assert key.read_bytes() == before


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_tap_on_the_emulated_card_records_its_e_money_payment(world, terminal_service):
    card = EmulatedCard(IDM, 8766, 77)
    with CardEmulator(free_udp_port(), card).running() as emulator:
        config = write_config(world, "store", device=emulator.path)
        out = []
        argv = ["tap", "--config", str(config), "--op", "emoney", "--amount", "1234", "--timeout", str(TAP_TIMEOUT_S)]
        assert main(argv, session=session_for(world.adapter), out=out.append) == 0
    assert "電子マネー支払い 1,234 円 を記録しました（履歴番号 77）" in out
    assert "電子マネー残高: 8,766 円" in out
    txn, _ = terminal_service.store.get_txn(IDM, 77)
    assert (txn.amount, txn.terminal_id) == (1234, "T-STORE")


# -- the key file and the queue's refused rows -----------------------------------------------


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o620, 0o602, 0o660])
def test_a_key_file_others_may_read_or_write_is_refused_with_chmod_600(world, capsys, mode):
    config_path = write_config(world, "store")
    key = world.config("store").key_path
    key.chmod(mode)
    with pytest.raises(KeyFileExposed, match=r"chmod 600"):
        world.client(world.config("store"))
    code = main(["flush", "--config", str(config_path)], session=session_for(world.adapter), out=[].append)
    err = capsys.readouterr().err
    assert code == 2
    assert f"chmod 600 {key}" in err and "秘密鍵ファイル" in err and f"{mode:04o}" in err
    assert world.adapter.sent == []  # nothing signed


def test_a_key_file_only_its_owner_may_read_is_used(world):
    world.config("store").key_path.chmod(0o400)
    world.client(world.config("store")).post("/api/terminal/v1/balance", {"idm": IDM})
    assert len(world.adapter.delivered) == 1


def test_the_menu_and_the_rejected_command_show_refused_records(world):
    agent = world.agent("store")
    queue_path = world.config("store").queue_path
    db = sqlite3.connect(queue_path)
    with db:
        db.execute("INSERT INTO pending (path, body, created_at) VALUES (?, ?, ?)", (
            "/api/terminal/v1/point-payments",
            json.dumps({"request_id": "planted-1", "idm": IDM, "amount": 4000, "allow_shortfall": False}),
            "2026-11-02T01:00:00+00:00"))
    db.close()
    shown = drive(agent, FakeReader(), "s", "q")
    assert "送信: 0 件、受付不可: 1 件、未送信: 0 件" in shown
    assert "受付不可の記録が 1 件あります。運営事務局に連絡してください（rejected コマンドで一覧）" in shown
    out = []
    assert main(["rejected", "--config", str(write_config(world, "store"))], out=out.append) == 0
    assert out[0] == "受付不可の記録: 1 件"
    assert "送信できない種類の記録（/api/terminal/v1/point-payments）" in out[1]
    assert "後から送信できない種類の記録のため、送信しませんでした" in out[1]
    assert f"IDm …{IDM[-4:]}" in out[2] and "取引番号 planted-1" in out[2] and IDM not in out[2]
