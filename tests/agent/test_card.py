"""The agent's NFC layer: the history record codec, and taps on an emulated ICOCA card
over nfcpy's UDP driver (127.0.0.1 only). Waits are bounded; nothing asserts timing."""

from __future__ import annotations

import os
import select
import socket
import subprocess
import sys
from datetime import date, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from terminal_agent.card import (
    CardRead,
    CardReader,
    CardReaderError,
    make_history_block,
    parse_history_block,
    parse_history_date,
)
from terminal_agent.emulator import CardEmulator, EmulatedCard

ROOT = Path(__file__).resolve().parents[2]
IDM = "0101031234abcdef"
TAP_TIMEOUT_S = 10

# -- the history record -------------------------------------------------------------------

# A POS sale on 2022-10-24 at 10:30:00, balance 1234 yen (LE d2 04), sequence number 258
# (BE 01 02), region 0 — written out by hand from the layout in terminal_agent.card.
SALE_2022_10_24 = bytes.fromhex("c7 46 0000 2d58 53c0 0000 d204 00 0102 00".replace(" ", ""))


def test_a_hand_made_record_parses_to_its_balance_sequence_and_date():
    assert parse_history_block(SALE_2022_10_24) == (1234, 258)
    assert parse_history_date(SALE_2022_10_24) == date(2022, 10, 24)


def test_make_writes_the_same_bytes_as_the_hand_made_record():
    assert make_history_block(1234, 258, at=datetime(2022, 10, 24, 10, 30)) == SALE_2022_10_24


@given(
    balance=st.integers(0, 0xFFFF),
    seq=st.integers(0, 0xFFFF),
    day=st.dates(date(2000, 1, 1), date(2127, 12, 31)),
    terminal_type=st.integers(0, 255),
    process_type=st.integers(0, 255),
    region=st.integers(0, 255),
)
def test_make_then_parse_round_trips(balance, seq, day, terminal_type, process_type, region):
    block = make_history_block(
        balance, seq, at=day, terminal_type=terminal_type, process_type=process_type, region=region
    )
    assert len(block) == 16
    assert block[0] == terminal_type and block[1] == process_type and block[15] == region
    assert block[12] == 0  # so a reader taking bytes 12-14 as the serial gets the same number
    if any(block):
        assert parse_history_block(block) == (balance, seq)
    assert parse_history_date(block) == day


def test_an_empty_record_has_no_balance_or_sequence():
    assert parse_history_block(bytes(16)) == (None, None)
    assert parse_history_date(bytes(16)) is None


@pytest.mark.parametrize("size", [0, 15, 17, 32])
def test_a_record_is_sixteen_bytes(size):
    with pytest.raises(ValueError, match="16 bytes"):
        parse_history_block(bytes(size))


@pytest.mark.parametrize(("balance", "seq"), [(-1, 0), (0x10000, 0), (0, -1), (0, 0x10000)])
def test_make_refuses_values_the_record_cannot_hold(balance, seq):
    with pytest.raises(ValueError):
        make_history_block(balance, seq)


def test_a_card_read_never_shows_the_full_idm():
    read = CardRead(IDM, 100, 1, None)
    assert IDM not in repr(read)


# -- taps on the emulated card ------------------------------------------------------------


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def udp_sockets_on(port: int) -> list[str]:
    """Local addresses (hex, as /proc/net/udp writes them) of the sockets bound to `port`."""
    rows = Path("/proc/net/udp").read_text().splitlines()[1:]
    locals_ = [row.split()[1] for row in rows]
    return [addr for addr, _, hexport in (a.partition(":") for a in locals_) if int(hexport, 16) == port]


class EmulatorProcess:
    """`python -m terminal_agent.emulator` as a child, waited for by its `ready` line."""

    def __init__(self, *args: str) -> None:
        self.port = free_udp_port()
        self.path = f"udp:127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "terminal_agent.emulator", "--port", str(self.port), "--idm", IDM, *args],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def wait_ready(self, timeout_s: float = 20) -> None:
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout_s)
        line = self.proc.stdout.readline() if ready else ""
        assert line.strip() == f"ready {self.path}", f"emulator not ready: {line!r} {self.proc.poll()}"

    def stop(self) -> tuple[int, str]:
        """Terminate by pid (SIGTERM), kill if it does not exit; (exit code, stdout rest)."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, 15)
        try:
            out, _ = self.proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, 9)
            out, _ = self.proc.communicate(timeout=10)
        return self.proc.returncode, out


def test_taps_on_an_emulator_process_read_idm_balance_and_sequence():
    emulator = EmulatorProcess("--balance", "15000", "--seq", "41")
    try:
        emulator.wait_ready()
        with CardReader(emulator.path) as reader:
            reads = [reader.tap(TAP_TIMEOUT_S) for _ in range(5)]
        assert all(r is not None for r in reads)
        for read in reads:
            assert read.idm == IDM
            assert (read.emoney_balance, read.last_seq) == (15000, 41)
            assert parse_history_block(read.history_block) == (15000, 41)
        if Path("/proc/net/udp").exists():
            assert udp_sockets_on(emulator.port) == ["0100007F"]  # 127.0.0.1, never 0.0.0.0
    finally:
        code, out = emulator.stop()
    assert code == 0 and "served 5 taps" in out


def test_an_advancing_card_shows_a_new_record_on_every_tap():
    emulator = EmulatorProcess("--balance", "5000", "--seq", "7", "--advance", "--spend", "120")
    try:
        emulator.wait_ready()
        with CardReader(emulator.path) as reader:
            reads = [reader.tap(TAP_TIMEOUT_S) for _ in range(6)]
    finally:
        emulator.stop()
    seqs = [r.last_seq for r in reads]
    assert seqs[0] == 7
    assert seqs == sorted(set(seqs))  # each payment writes a newer record
    for read in reads:  # the balance and the sequence number moved together
        assert read.emoney_balance == 5000 - 120 * (read.last_seq - 7)


def test_the_emulator_exits_after_its_taps():
    emulator = EmulatorProcess("--balance", "100", "--seq", "1", "--taps", "3")
    try:
        emulator.wait_ready()
        with CardReader(emulator.path) as reader:
            for _ in range(3):
                assert reader.tap(TAP_TIMEOUT_S).last_seq == 1
        emulator.proc.wait(timeout=20)
    finally:
        code, out = emulator.stop()
    assert code == 0 and "served 3 taps" in out


def test_a_card_without_e_money_history_reads_as_idm_only():
    emulator = EmulatorProcess("--no-history")
    try:
        emulator.wait_ready()
        with CardReader(emulator.path) as reader:
            read = reader.tap(TAP_TIMEOUT_S)
    finally:
        emulator.stop()
    assert read == CardRead(IDM, None, None, None)


def test_an_in_process_emulator_can_change_the_card_between_taps():
    card = EmulatedCard(IDM, 3000, 10)
    with CardEmulator(free_udp_port(), card).running() as emulator, CardReader(emulator.path) as reader:
        first = reader.tap(TAP_TIMEOUT_S)
        card.set(balance=2500, seq=11)
        second = reader.tap(TAP_TIMEOUT_S)
    assert (first.emoney_balance, first.last_seq) == (3000, 10)
    assert (second.emoney_balance, second.last_seq) == (2500, 11)


def test_a_tap_with_no_card_returns_none_after_its_timeout():
    with CardReader(f"udp:127.0.0.1:{free_udp_port()}") as reader:
        assert reader.tap(0.1) is None


def test_the_udp_driver_refuses_anything_but_loopback():
    with pytest.raises(CardReaderError, match="127.0.0.1"):
        CardReader("udp:192.0.2.1:54321")


def test_a_taken_port_is_a_clear_error():
    card = EmulatedCard(IDM, 1, 1)
    with CardEmulator(free_udp_port(), card).running() as first:
        port = int(first.path.rsplit(":", 1)[1])
        with pytest.raises(CardReaderError, match="already in use"):
            CardEmulator(port, card)
