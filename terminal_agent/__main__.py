"""The terminal agent's commands.

    python -m terminal_agent keygen --key PATH [--terminal-id ID]
    python -m terminal_agent run    --config PATH
    python -m terminal_agent tap    --config PATH --op balance|pay|emoney|charge|checkin
                                    [--amount N] [--shortfall] [--kind cash] [--timeout S]
    python -m terminal_agent flush  --config PATH
    python -m terminal_agent rejected --config PATH

Exit status: 0 done (for `tap`, also a record queued offline), 1 refused or failed,
2 bad usage or configuration, 3 no card was tapped in time.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import requests

from .agent import Agent, AgentError
from .card import CardReader, CardReaderError
from .client import ApiClient, ApiError, Offline
from .config import AgentConfig, ConfigError
from .messages import describe, message
from .queue import OfflineQueue
from .signing import KeyFileExposed, generate_key
from .ui import TerminalUI, balance_lines, checkin_lines, flush_lines, payment_lines, recorded_lines, rejected_lines

OK, FAILED, USAGE, NO_CARD = 0, 1, 2, 3
OPS = ("balance", "pay", "emoney", "charge", "checkin")
NEEDS_AMOUNT = frozenset({"pay", "emoney", "charge"})


def main(
    argv: Sequence[str] | None = None,
    *,
    open_reader: Callable[[str], CardReader] = CardReader,
    session: requests.Session | None = None,
    out: Callable[[str], None] = print,
) -> int:
    """`open_reader` and `session` let tests put a fake reader and an in-process API here."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "keygen":
        return keygen(args.key, args.terminal_id, out)
    try:
        config = AgentConfig.load(args.config)
    except ConfigError as exc:
        print(f"terminal_agent: {exc}", file=sys.stderr)
        return USAGE
    if args.command == "tap" and args.op in NEEDS_AMOUNT and args.amount is None:
        parser.error(f"--op {args.op} needs --amount")
    if args.command == "rejected":  # reads the queue only: needs neither the key nor the network
        with OfflineQueue(config.queue_path) as queue:
            for line in rejected_lines(queue.rejected()):
                out(line)
        return OK
    try:
        agent = Agent(config, client=ApiClient(config, session))
    except KeyFileExposed as exc:
        print(f"terminal_agent: {exc}", file=sys.stderr)
        return USAGE
    except OSError as exc:  # the key file is missing or unreadable
        print(f"terminal_agent: cannot read the key {config.key_path}: {exc.strerror or exc}", file=sys.stderr)
        return USAGE
    try:
        if args.command == "flush":
            return flush(agent, out)
        try:
            reader = open_reader(config.device)
        except CardReaderError as exc:
            out(describe(exc))
            return FAILED
        try:
            if args.command == "run":
                try:
                    TerminalUI(agent, reader, show=out).run()
                except KeyboardInterrupt:
                    out("終了します")  # Ctrl-C is how a technician stops the till program
                return OK
            return tap(agent, reader, args, out)
        finally:
            reader.close()
    finally:
        agent.close()


def keygen(key: Path, terminal_id: str | None, out: Callable[[str], None]) -> int:
    try:
        public_pem = generate_key(key)
    except FileExistsError:
        print(f"terminal_agent: {key} already exists; a terminal keeps its key (delete it only to re-register)",
              file=sys.stderr)
        return USAGE
    except OSError as exc:
        print(f"terminal_agent: cannot write {key}: {exc.strerror or exc}", file=sys.stderr)
        return USAGE
    out(f"秘密鍵を {key} に保存しました（この端末の外には出さないでください）。")
    out("次の公開鍵と端末ID を運営事務局に送り、加盟店（またはイベント）への登録を依頼してください。")
    out(f"端末ID: {terminal_id or '（運営事務局と決めた ID）'}")
    out(public_pem.rstrip("\n"))
    return OK


def tap(agent: Agent, reader: CardReader, args: argparse.Namespace, out: Callable[[str], None]) -> int:
    out("カードをタッチしてください")
    try:
        card = reader.tap(args.timeout)
    except CardReaderError as exc:
        out(describe(exc))
        return FAILED
    if card is None:
        out(message("no_card"))
        return NO_CARD
    try:
        if args.op == "balance":
            lines = balance_lines(agent.balance(card))
        elif args.op == "pay":
            lines = payment_lines(agent.pay_points(card, args.amount, allow_shortfall=args.shortfall))
        elif args.op == "emoney":
            lines = recorded_lines("emoney", agent.record_emoney(card, args.amount), card)
        elif args.op == "charge":
            lines = recorded_lines("charge", agent.record_charge(card, args.amount, args.kind), card)
        else:
            lines = checkin_lines(agent.checkin(card))
    except (ApiError, Offline, AgentError) as exc:
        out(describe(exc))
        return FAILED
    for line in lines:
        out(line)
    return OK


def flush(agent: Agent, out: Callable[[str], None]) -> int:
    report = agent.flush_queue()
    for line in flush_lines(report):
        out(line)
    return OK if report.remaining == 0 else FAILED


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m terminal_agent", description="Chiiki Points store terminal")
    commands = parser.add_subparsers(dest="command", required=True)

    keygen_cmd = commands.add_parser("keygen", help="make this terminal's signing key (never overwrites)")
    keygen_cmd.add_argument("--key", type=Path, required=True, help="where to write the private key (PEM, 0600)")
    keygen_cmd.add_argument("--terminal-id", help="the id the operator will register, printed with the key")

    run_cmd = commands.add_parser("run", help="the clerk's menu")
    run_cmd.add_argument("--config", type=Path, required=True)

    tap_cmd = commands.add_parser("tap", help="one tap, one operation; prints the result")
    tap_cmd.add_argument("--config", type=Path, required=True)
    tap_cmd.add_argument("--op", choices=OPS, required=True)
    tap_cmd.add_argument("--amount", type=int, help="points (pay) or yen (emoney, charge)")
    tap_cmd.add_argument("--shortfall", action="store_true", help="pay: take the shortfall in cash")
    tap_cmd.add_argument("--kind", default="cash", help="charge: its kind (cash, point-charge, …)")
    tap_cmd.add_argument("--timeout", type=float, default=15.0, help="seconds to wait for a card")

    flush_cmd = commands.add_parser("flush", help="send the records queued while offline")
    flush_cmd.add_argument("--config", type=Path, required=True)

    rejected_cmd = commands.add_parser("rejected", help="list the queued records that were refused, for the operator")
    rejected_cmd.add_argument("--config", type=Path, required=True)
    return parser


if __name__ == "__main__":
    sys.exit(main())
