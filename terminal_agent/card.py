"""Reading an ICOCA card on the store terminal, with nfcpy.

A tap yields the card's IDm and the newest record of its e-money history. The history
is FeliCa service 0x090F (cyclic, readable without a key); block 0 is the newest record,
and each record is one 16-byte block in the layout shared by Suica, ICOCA, PASMO and the
other "Cybernetics" transit cards:

    byte 0       terminal type (0xC7 POS terminal, 0xC8 vending machine, 0x16 gate, ...)
    byte 1       process type (0x46 sale, 0x02 charge, 0x01 fare, ...; bit 7 = paid partly in cash)
    bytes 2-3    payment and entry kinds (not used here)
    bytes 4-5    date, big-endian: 7-bit year since 2000, 4-bit month, 5-bit day
    bytes 6-9    entry/exit station codes; on POS records bytes 6-7 hold the time
                 (5-bit hour, 6-bit minute, 5-bit second/2)
    bytes 10-11  e-money balance after the transaction, LITTLE-endian (the only LE field)
    byte 12      unused (0 on the cards we know of)
    bytes 13-14  transaction sequence number (履歴連番), big-endian
    byte 15      region codes

Sources agree on every field but the sequence number: felicalib's wiki (the layout most
readers copy) and felica-look call bytes 12-14 a 3-byte serial, while later, more detailed
analyses (e.g. ICHistoryReader) place a 2-byte 履歴連番 at 13-14 with byte 12 unused;
metrodroid reads the balance from 10-11 little-endian like everyone. We read 13-14 and
write 0 at 12, so both readings give the same number for blocks we make.

The sequence number is what makes an e-money payment record exactly-once on the server
(SPEC §7): one payment on the card writes one new record with a new number.

nfcpy owns the polling loop; `CardReader.tap` supplies a small on-connect callback, maps
device errors by errno to `CardReaderError`, and the reader is closed in `close()`. For
tests and benchmarks the device path ``udp:127.0.0.1:PORT`` talks to the card emulator in
`terminal_agent.emulator`; nfcpy's UDP driver is replaced by a loopback-only subclass (the
stock driver binds a card to 0.0.0.0, see `LoopbackUdpDevice`).
"""

from __future__ import annotations

import errno
import functools
import ipaddress
import socket
import struct
import time
from dataclasses import dataclass
from datetime import date, datetime

import nfc
import nfc.clf.udp
import nfc.tag.tt3

HISTORY_SERVICE_CODE = 0x090F
HISTORY_BLOCK_SIZE = 16
POS_TERMINAL = 0xC7
VENDING_MACHINE = 0xC8
PROCESS_SALE = 0x46
UDP_DEFAULT_HOST, UDP_DEFAULT_PORT = "localhost", 54321  # nfcpy's defaults for a bare "udp"

_HISTORY_SERVICE = nfc.tag.tt3.ServiceCode(HISTORY_SERVICE_CODE >> 6, HISTORY_SERVICE_CODE & 0x3F)


class CardReaderError(Exception):
    """The reader could not be opened or stopped working; the message says what to do."""

    def __init__(self, message: str, errno: int | None = None) -> None:
        super().__init__(message)
        self.errno = errno


@dataclass(frozen=True)
class CardRead:
    """What one tap read. Balance and sequence number are None when the card has no
    readable e-money history (no service 0x090F, or an empty newest record)."""

    idm: str  # 16 lowercase hex characters
    emoney_balance: int | None
    last_seq: int | None
    history_block: bytes | None

    def __repr__(self) -> str:
        # The IDm is personal data (DESIGN: never in full in logs); reprs end up in logs.
        return (
            f"CardRead(idm={self.idm[:4]}…{self.idm[-4:]}, emoney_balance={self.emoney_balance}, "
            f"last_seq={self.last_seq})"
        )


# -- the history record -------------------------------------------------------------------


def parse_history_block(block: bytes) -> tuple[int | None, int | None]:
    """(e-money balance, transaction sequence number) of one 16-byte history record.

    An all-zero block is an unused record (a card with no history yet): (None, None).
    """
    if len(block) != HISTORY_BLOCK_SIZE:
        raise ValueError(f"a history record is {HISTORY_BLOCK_SIZE} bytes, got {len(block)}")
    if not any(block):
        return None, None
    (balance,) = struct.unpack_from("<H", block, 10)
    (seq,) = struct.unpack_from(">H", block, 13)
    return balance, seq


def parse_history_date(block: bytes) -> date | None:
    """The record's date, or None when the date field is empty or not a real date."""
    if len(block) != HISTORY_BLOCK_SIZE:
        raise ValueError(f"a history record is {HISTORY_BLOCK_SIZE} bytes, got {len(block)}")
    (packed,) = struct.unpack_from(">H", block, 4)
    try:
        return date(2000 + (packed >> 9), packed >> 5 & 0x0F, packed & 0x1F)
    except ValueError:
        return None


def make_history_block(
    balance: int,
    seq: int,
    *,
    at: date | datetime | None = None,
    terminal_type: int = POS_TERMINAL,
    process_type: int = PROCESS_SALE,
    region: int = 0,
) -> bytes:
    """A 16-byte history record as a card writes it after a transaction (see the module
    docstring for the layout). The date is left empty when `at` is None; the time of day
    is stored only for POS and vending-machine records, as the cards do."""
    if not 0 <= balance <= 0xFFFF:
        raise ValueError(f"balance must fit 16 bits, got {balance}")
    if not 0 <= seq <= 0xFFFF:
        raise ValueError(f"sequence number must fit 16 bits, got {seq}")
    block = bytearray(HISTORY_BLOCK_SIZE)
    block[0], block[1], block[15] = terminal_type, process_type, region
    if at is not None:
        if not 2000 <= at.year <= 2127:
            raise ValueError(f"the date field holds the years 2000-2127, got {at.year}")
        struct.pack_into(">H", block, 4, (at.year - 2000) << 9 | at.month << 5 | at.day)
        if isinstance(at, datetime) and terminal_type in (POS_TERMINAL, VENDING_MACHINE):
            struct.pack_into(">H", block, 6, at.hour << 11 | at.minute << 5 | at.second // 2)
    struct.pack_into("<H", block, 10, balance)
    struct.pack_into(">H", block, 13, seq)
    return bytes(block)


# -- opening a reader ---------------------------------------------------------------------

_DEVICE_ERRORS = {
    errno.ENODEV: "no contactless reader found at {path!r}: is it plugged in?",
    errno.ENOENT: "cannot use the reader at {path!r}: libusb is missing (Debian: apt-get install libusb-1.0-0)",
    errno.EACCES: "permission denied opening the reader at {path!r}: add a udev rule for it "
    "or run the agent as a member of the reader's group (plugdev)",
    errno.EBUSY: "the reader at {path!r} is busy: another program holds it, or the kernel's "
    "port100 driver does (blacklist port100)",
    errno.EADDRINUSE: "UDP port of {path!r} is already in use (another emulated card?)",
}


def device_error(path: str, exc: OSError) -> CardReaderError:
    """A CardReaderError with a message a shop clerk's support can act on."""
    template = _DEVICE_ERRORS.get(exc.errno, "reader I/O error at {path!r}: {reason}")
    return CardReaderError(template.format(path=path, reason=exc.strerror or exc), errno=exc.errno)


class LoopbackUdpDevice(nfc.clf.udp.Device):
    """nfcpy's UDP driver held to the loopback interface.

    The stock driver binds an emulated card to 0.0.0.0:PORT and lets the reader's socket
    be bound implicitly (to 0.0.0.0 as well) by its first sendto; here the card binds the
    host from the path and the reader binds that host with an ephemeral port.

    It also keeps the card's listening socket open between reader sessions. Stock nfcpy
    mutes (closes) it at every listen and binds a new one, discarding whatever was queued
    or arrives in between; the next tap's polling, sent right after the reader's RF-off,
    usually lands there and the reader waits out its 1 s polling timeout.
    """

    def __init__(self, host: str, port: int) -> None:
        super().__init__(host, port)
        self._vendor_name, self._device_name, self._chipset_name = "Loopback", "IP-Stack", "UDP"
        self._path = f"udp:{self.addr[0]}:{self.addr[1]}"

    def _is_listener(self) -> bool:
        return self.socket is not None and self.socket.getsockname() == self.addr

    def bind_listener(self) -> None:
        """Bind the card's port now (raises OSError EADDRINUSE if taken)."""
        self._create_socket()
        if not self._is_listener():
            self.socket.bind(self.addr)

    def _bind_socket(self, time_to_return: float) -> bool:
        try:
            self.bind_listener()
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return False
            raise
        return True

    def _send_data(self, brty, data, addr) -> None:
        if self.socket.getsockname()[1] == 0:  # a reader's fresh socket: not 0.0.0.0
            self.socket.bind((self.addr[0], 0))
        super()._send_data(brty, data, addr)

    def mute(self) -> None:
        if not self._is_listener():
            super().mute()  # reader: sends RF-off to the card and drops the socket

    def close(self) -> None:
        super().mute()


def parse_udp_path(device_path: str) -> tuple[str, int]:
    """(loopback IP, port) of ``udp[:host][:port]``, refusing any non-loopback host."""
    parts = device_path.split(":")
    if parts[0] != "udp" or len(parts) > 3:
        raise ValueError(f"not a udp device path: {device_path!r}")
    host = parts[1] if len(parts) > 1 and parts[1] else UDP_DEFAULT_HOST
    port = int(parts[2]) if len(parts) > 2 and parts[2] else UDP_DEFAULT_PORT
    try:
        ip = socket.gethostbyname(host)
    except OSError as exc:
        raise CardReaderError(f"cannot resolve the host of {device_path!r}: {exc}") from exc
    if not ipaddress.ip_address(ip).is_loopback:
        raise CardReaderError(f"{device_path!r}: the UDP driver is a local simulator and only talks to 127.0.0.1")
    return ip, port


def open_frontend(device_path: str) -> nfc.ContactlessFrontend:
    """An open nfcpy frontend for 'usb[...]', 'tty:...' or 'udp:127.0.0.1:PORT'."""
    if device_path.split(":", 1)[0] == "udp":
        host, port = parse_udp_path(device_path)
        clf = nfc.ContactlessFrontend()
        clf.device = LoopbackUdpDevice(host, port)
        return clf
    try:
        return nfc.ContactlessFrontend(device_path)
    except OSError as exc:
        raise device_error(device_path, exc) from exc


# -- the reader ---------------------------------------------------------------------------


class CardReader:
    """One contactless reader, opened once and reused for every tap (one thread at a time).

    Opening a USB reader costs USB enumeration and chip setup; a terminal keeps it open.
    """

    def __init__(self, device_path: str, *, poll_interval_s: float = 0.05) -> None:
        self.device_path = device_path
        self._clf = open_frontend(device_path)
        # nfcpy checks `terminate` between rounds of polling. A UDP polling without a card
        # already blocks 1 s in the driver, so one poll per round; a USB poll returns in
        # milliseconds, so a round is ~0.5 s of polls spaced by poll_interval_s.
        if isinstance(self._clf.device, LoopbackUdpDevice):
            self._iterations = 1
        else:
            self._iterations = max(1, round(0.5 / poll_interval_s))
        self._poll_interval_s = poll_interval_s

    def __enter__(self) -> CardReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._clf.close()

    def tap(self, timeout_s: float = 10.0) -> CardRead | None:
        """Wait up to about `timeout_s` for a card and read it; None if none came.

        The deadline is checked between polling rounds, so the wait can overrun it by one
        round (≤ 1 s on the UDP driver, ~0.5 s on USB). A card pulled away mid-read is
        polled for again until the deadline.
        """
        deadline = time.monotonic() + timeout_s

        def expired() -> bool:
            return time.monotonic() >= deadline

        while not expired():
            reads: list[CardRead] = []
            result = self._clf.connect(
                rdwr={
                    "targets": ["212F"],
                    "iterations": self._iterations,
                    "interval": self._poll_interval_s,
                    "beep-on-connect": False,
                    "on-connect": functools.partial(self._on_connect, reads=reads),
                },
                terminate=expired,
            )
            if result is False:
                # nfcpy logs and swallows the IOError (and a KeyboardInterrupt) and returns False.
                raise CardReaderError(
                    f"the reader at {self.device_path!r} stopped working while polling "
                    "(device I/O error, see the 'nfc.clf' log); close and reopen it"
                )
            if result is None:
                return None  # terminated: the deadline passed without a card
            self._release()
            if reads:
                return reads[0]
        return None

    @staticmethod
    def _on_connect(tag: nfc.tag.Tag, reads: list[CardRead]) -> bool:
        """Read IDm and the newest history record; False hands the tag back at once
        (True would make nfcpy wait until the card is removed)."""
        idm = bytes(tag.identifier).hex()
        try:
            block = bytes(tag.read_without_encryption([_HISTORY_SERVICE], [nfc.tag.tt3.BlockCode(0)]))
        except nfc.tag.tt3.Type3TagCommandError as exc:
            if exc.errno > 0xFF:  # the card answered with an error status: no such service
                reads.append(CardRead(idm, None, None, None))
            return False  # otherwise the card left the field mid-read: nothing appended
        balance, seq = parse_history_block(block)
        reads.append(CardRead(idm, balance, seq, block))
        return False

    def _release(self) -> None:
        # Switch the RF field off now rather than at the next tap, so the card (a real one,
        # or the emulator) sees the session end while the terminal talks to the server.
        # sense() with no targets does exactly that: mute, then nothing to poll.
        self._clf.sense()
