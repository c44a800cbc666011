"""An emulated ICOCA card on nfcpy's UDP driver, so tests and benchmarks can tap a card.

    python -m terminal_agent.emulator --port PORT --idm HEX --balance N --seq N
                                      [--taps K] [--advance] [--spend YEN] [--no-history]

The card listens on udp:127.0.0.1:PORT (loopback only), answers FeliCa polling with its
IDm, the PMm of a Suica-family card and system code 0003, and serves block 0 of service
0x090F: a POS sale record holding the balance and sequence number (layout in
`terminal_agent.card`). After each reader session (activation to RF-off) it listens again,
so one process serves any number of taps; it exits after K taps, or on SIGTERM / SIGINT.
With --advance every session that read the record makes the next one a new payment:
sequence number + 1 and balance - SPEND, as a card does after an e-money payment.

It prints ``ready udp:127.0.0.1:PORT`` on stdout once the port is bound (wait for that
line before tapping) and ``served N taps`` when it exits. In-process, use `CardEmulator`
(`with CardEmulator(port, card).running(): ...` serves from a thread).
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import socket
import sys
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import nfc.clf

from terminal_agent.card import (
    HISTORY_SERVICE_CODE,
    CardReaderError,
    LoopbackUdpDevice,
    device_error,
    make_history_block,
    open_frontend,
)

ICOCA_PMM = bytes.fromhex("100B4B428485D0FF")  # as Suica/ICOCA cards answer (IC 0x0B)
TRANSIT_SYSTEM_CODE = 0x0003
JST = timezone(timedelta(hours=9))  # Japan keeps no daylight saving time
LISTEN_S = 0.5  # how often the card loop checks for a stop between polls


class EmulatedCard:
    """The card's state, changeable between taps from another thread."""

    def __init__(
        self,
        idm: str,
        balance: int | None,
        seq: int | None,
        *,
        advance: bool = False,
        spend: int = 0,
        pmm: bytes = ICOCA_PMM,
        system_code: int = TRANSIT_SYSTEM_CODE,
    ) -> None:
        raw = bytes.fromhex(idm)
        if len(raw) != 8:
            raise ValueError(f"an IDm is 8 bytes (16 hex characters), got {idm!r}")
        if raw[:2] == b"\x01\xfe":
            raise ValueError("an IDm starting 01FE marks an NFC-DEP device; readers skip it")
        if (balance is None) != (seq is None):
            raise ValueError("give both balance and seq, or neither (a card without e-money history)")
        if balance is not None:
            make_history_block(balance, seq)  # refuses what a record cannot hold
        self.idm, self.pmm, self.system_code = raw, pmm, system_code
        self.advance, self.spend = advance, spend
        self.taps = 0  # reader sessions served
        self._balance, self._seq = balance, seq
        self._lock = threading.Lock()
        self._read_this_session = False

    @property
    def has_history(self) -> bool:
        return self._seq is not None

    def set(self, *, balance: int, seq: int) -> None:
        """What the next tap reads."""
        make_history_block(balance, seq)  # validates
        with self._lock:
            self._balance, self._seq = balance, seq

    def state(self) -> tuple[int | None, int | None]:
        with self._lock:
            return self._balance, self._seq

    def read_block(self, block_number: int, rb: bool, re: bool) -> bytes | None:
        """nfcpy's block read callback for service 0x090F; None answers 'no such block'."""
        if block_number != 0:
            return None
        with self._lock:
            self._read_this_session = True
            return make_history_block(self._balance, self._seq, at=datetime.now(JST).replace(tzinfo=None))

    def end_session(self) -> int:
        with self._lock:
            self.taps += 1
            if self.advance and self._read_this_session:
                self._seq = (self._seq + 1) & 0xFFFF
                self._balance = min(0xFFFF, max(0, self._balance - self.spend))
            self._read_this_session = False
            return self.taps


class CardEmulator:
    """Serves `card` on udp:127.0.0.1:PORT until `taps` sessions or `stop()`."""

    def __init__(self, port: int, card: EmulatedCard, *, taps: int | None = None, host: str = "127.0.0.1") -> None:
        self.path = f"udp:{host}:{port}"
        self.card = card
        self.max_taps = taps
        self._stop = threading.Event()
        self._clf = open_frontend(self.path)
        try:
            self._device: LoopbackUdpDevice = self._clf.device
            self._device.bind_listener()  # bound before `ready`, so no polling is lost
        except OSError as exc:
            self._clf.close()
            raise device_error(self.path, exc) from exc

    def run(self) -> int:
        """Serve until done; returns the number of taps served. Closes the port."""
        try:
            # nfcpy loops listen -> session -> listen until on-release says done or stop().
            result = self._clf.connect(
                card={
                    "on-startup": self._on_startup,
                    "on-connect": self._on_connect,
                    "on-release": self._on_release,
                    "timeout": LISTEN_S,
                },
                terminate=self._stop.is_set,
            )
        finally:
            self._clf.close()
        if result is False and not self._stop.is_set():
            raise CardReaderError(f"the card emulator on {self.path} hit an I/O error (see the 'nfc.clf' log)")
        return self.card.taps

    def stop(self) -> None:
        """Ask run() to return; safe from a signal handler or another thread."""
        self._stop.set()
        # A card in a session blocks on its socket with no timeout until the reader's
        # RF-off; send one ourselves (from a loopback socket) to end that wait.
        with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as poke:
            poke.bind((self._device.addr[0], 0))
            poke.sendto(b"RFOFF", self._device.addr)

    @contextlib.contextmanager
    def running(self) -> Iterator[CardEmulator]:
        """Serve from a daemon thread for the duration of the block."""
        thread = threading.Thread(target=self.run, name=f"card-emulator {self.path}", daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self.stop()
            thread.join(timeout=5)

    def _on_startup(self, target: nfc.clf.LocalTarget) -> nfc.clf.LocalTarget:
        card = self.card
        target = nfc.clf.LocalTarget("212F")
        target.sensf_res = b"\x01" + card.idm + card.pmm + card.system_code.to_bytes(2, "big")
        return target

    def _on_connect(self, tag) -> bool:
        if self.card.has_history:
            tag.add_service(HISTORY_SERVICE_CODE, self.card.read_block, None)
        return True  # True: nfcpy answers the reader's commands until RF-off

    def _on_release(self, tag) -> bool:
        taps = self.card.end_session()
        # True ends connect(); False listens for the next tap.
        return self._stop.is_set() or (self.max_taps is not None and taps >= self.max_taps)


@contextlib.contextmanager
def spawned(port: int, idm: str, *, balance: int, seq: int, advance: bool = True) -> Iterator[str]:
    """An emulated card in a process of its own, for tests, benchmarks and demos; yields
    its device path once it is ready, and stops it by its pid afterwards."""
    import subprocess

    proc = subprocess.Popen(
        [sys.executable, "-m", "terminal_agent.emulator", "--port", str(port), "--idm", idm,
         "--balance", str(balance), "--seq", str(seq), *(["--advance"] if advance else [])],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        if not (proc.stdout and proc.stdout.readline().startswith("ready")):
            raise CardReaderError("the emulated card did not start")
        yield f"udp:127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m terminal_agent.emulator", description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, required=True, help="UDP port on 127.0.0.1")
    parser.add_argument("--idm", required=True, help="the card's IDm, 16 hex characters")
    parser.add_argument("--balance", type=int, help="e-money balance in the newest history record")
    parser.add_argument("--seq", type=int, help="transaction sequence number of that record")
    parser.add_argument("--taps", type=int, help="exit after this many reader sessions")
    parser.add_argument("--advance", action="store_true", help="each read session is a payment: seq + 1")
    parser.add_argument("--spend", type=int, default=0, help="with --advance, yen taken off the balance per tap")
    parser.add_argument("--no-history", action="store_true", help="a card without service 0x090F")
    args = parser.parse_args(argv)
    if args.no_history:
        args.balance = args.seq = None
    elif args.balance is None or args.seq is None:
        parser.error("--balance and --seq are required unless --no-history")
    try:
        card = EmulatedCard(args.idm, args.balance, args.seq, advance=args.advance, spend=args.spend)
        emulator = CardEmulator(args.port, card, taps=args.taps)
    except (ValueError, CardReaderError) as exc:
        print(f"emulator: {exc}", file=sys.stderr)
        return 1
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: emulator.stop())
    print(f"ready {emulator.path}", flush=True)
    served = emulator.run()
    print(f"served {served} taps", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
