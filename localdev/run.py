"""`make run`: the API on `chalice local`, DynamoDB on an in-process moto server, demo data.

    CHIIKI_API_PORT   (default 8000)  the resident PWA and the API, one origin
    CHIIKI_MAIL_PORT  (default 8025)  the local outbox: mail sent through (moto's) SES, the mail queue drained first
    CHIIKI_MOTO_PORT  (default 5005)  moto's server: DynamoDB, SES, SQS and S3 endpoint
    CHIIKI_STATE_DIR  (default .local) demo terminal keys and agent configs

Everything binds 127.0.0.1 and uses fake AWS credentials: nothing reaches AWS. Demo
terminal keys and agent configs are kept in .local/ (never committed).
Ctrl-C (or SIGTERM) stops chalice by its pid, then moto.
"""

from __future__ import annotations

import os
import signal
import sys
from types import FrameType

from localdev.stack import LocalStack, default_state_dir


def port_from_env(name: str, default: int) -> int:
    value = os.environ.get(name)
    if not value:
        return default
    try:
        return int(value)
    except ValueError as exc:
        raise SystemExit(f"{name}={value!r} is not a port number") from exc


def _interrupt(signum: int, frame: FrameType | None) -> None:
    # SIGTERM takes the same clean path as Ctrl-C.
    raise KeyboardInterrupt


def banner(stack: LocalStack) -> str:
    lines = [f"Loaded issuer niimi and {len(stack.cards)} demo cards into {stack.table}:"]
    for card in stack.cards:
        lines.append(f"  {card.spec.card_number} ({card.spec.label})")
        lines += [f"    {step}" for step in card.steps]
    lines += [
        "",
        "Chiiki Points is running (local, fake AWS, 127.0.0.1 only):",
        f"  MyPage (PWA)   {stack.api_url}/",
        f"  mail outbox    {stack.outbox_url}/   (the 4-digit codes arrive here)",
        f"  API            {stack.api_url}/api/health",
        f"  issuer         {stack.api_url}/api/issuers/niimi",
        f"  terminal API   {stack.api_url}/api/terminal/v1/…  (OpenAPI: chalicelib/openapi.json)",
        f"  DynamoDB       {stack.moto_url}  (moto; table {stack.table})",
        "  demo cards     (issuer niimi; sign up on MyPage with a card number and birth date)",
    ]
    for card in stack.cards:
        s = card.spec
        lines.append(f"    {s.card_number}  born {s.birth_date}  IDm {s.idm}\n      {card.shows}")
    lines.append("  demo terminals (keys and agent configs in .local/)")
    for t in stack.terminals:
        lines.append(f"    {t.terminal_id:16} {t.mode.value:8} {t.what}")
    lines += [
        "",
        "Tap the demo card on the simulated store terminal (an emulated ICOCA card over UDP):",
        "  .venv/bin/python -m localdev.tap",
        "",
        "Run a scheduled job now (the demo card JW010000000000003 has work for each):",
        "  .venv/bin/python -m localdev.jobs {expiry|rebate|campaigns|dormancy|reminders|reports|audit|all}",
        "",
        "Operate it as city staff would (the admin API, unsigned locally; CSV drops as in the bucket):",
        f"  .venv/bin/python -m tools.admin --api {stack.api_url} --issuer niimi card show JW010000000000001",
        "  .venv/bin/python -m localdev.imports cards.csv niimi/cards/cards.csv",
        "",
        "Stop with Ctrl-C.",
    ]
    return "\n".join(lines)


def main() -> int:
    api_port = port_from_env("CHIIKI_API_PORT", 8000)
    moto_port = port_from_env("CHIIKI_MOTO_PORT", 5005)
    mail_port = port_from_env("CHIIKI_MAIL_PORT", 8025)
    state_dir = default_state_dir()
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        ports = {"api_port": api_port, "moto_port": moto_port, "mail_port": mail_port}
        with LocalStack(**ports, state_dir=state_dir) as stack:
            print(banner(stack), flush=True)
            try:
                code = stack.wait()
            finally:
                # A second Ctrl-C must not cut the clean-up short.
                signal.signal(signal.SIGINT, signal.SIG_IGN)
                signal.signal(signal.SIGTERM, signal.SIG_IGN)
            print(f"chalice local exited with code {code}", file=sys.stderr)
            return code or 1
    except KeyboardInterrupt:
        return 0
    finally:
        print("Stopped chalice local and moto.", flush=True)


if __name__ == "__main__":
    sys.exit(main())
