"""`python -m localdev.tap`: tap a demo card on a simulated terminal of `make run`.

Starts an emulated ICOCA card (nfcpy's UDP driver, loopback only) for the demo card and
the terminal agent with the demo terminal's config from `make run`:

    .venv/bin/python -m localdev.tap                          # the store terminal's clerk UI
    .venv/bin/python -m localdev.tap --op pay --amount 500    # one tap, one operation
    .venv/bin/python -m localdev.tap --terminal event --op checkin

Options: --terminal store|charger|event, --card JW… (a demo card number); any other
arguments go to `python -m terminal_agent tap`. CHIIKI_CARD_PORT moves the card's port.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import urllib.request

from localdev.demo import CARD_PORT, FRESH, WORKED
from localdev.stack import ROOT, default_state_dir
from terminal_agent.emulator import spawned

CARDS = {spec.card_number: spec for spec in (FRESH, WORKED)}
DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m localdev.tap", description=__doc__.splitlines()[0])
    parser.add_argument("--terminal", choices=["store", "charger", "event"], default="store")
    parser.add_argument("--card", choices=sorted(CARDS), default=FRESH.card_number)
    args, agent_args = parser.parse_known_args(argv)

    config_path = default_state_dir() / f"agent-{args.terminal}.json"
    if not config_path.exists():
        print("No demo terminal yet: start `make run` first (it writes .local/agent-*.json).", file=sys.stderr)
        return 2
    config = json.loads(config_path.read_text(encoding="utf-8"))
    try:
        DIRECT.open(config["api_base"] + "/api/health", timeout=3).close()
    except OSError:
        print(f"The API at {config['api_base']} does not answer: is `make run` running?", file=sys.stderr)
        return 2
    port = int(os.environ.get("CHIIKI_CARD_PORT") or CARD_PORT)
    if config["device"] != f"udp:127.0.0.1:{port}":
        config["device"] = f"udp:127.0.0.1:{port}"
        config_path.write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")

    card = CARDS[args.card]
    try:
        with spawned(port, card.idm, balance=3000, seq=1) as device:
            print(f"Emulated card {card.card_number} (e-money 3,000 yen) is on the reader at {device}.")
            command = ["tap", *agent_args] if agent_args else ["run"]
            return subprocess.call(
                [sys.executable, "-m", "terminal_agent", *command, "--config", str(config_path)], cwd=ROOT
            )
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
