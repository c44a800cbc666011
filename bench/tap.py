"""Tap → result on a store terminal, through the whole local stack.

Each tap goes the agent's way: the emulated ICOCA card (nfcpy's UDP driver, in its own
process) is read by `CardReader`, the agent signs its request (RFC 9421, Ed25519), and
`chalice local` answers on moto's server. Taps cycle through a balance check, a 1-point
payment and an e-money record. Also counted: the DynamoDB requests moto's server receives
during each terminal operation with the caches warm, the maximum after the warm-up. The
API's lookups are cached for 30 s (terminals, merchants, events, rebate rates; issuers
300 s), so a long run reloads them now and then: a tap during which the API reloaded one
(a GetItem or Query of a TERMINAL#, MERCHANTS#, EVENT#, ISSUER# or REBATE_RATES# key) is
counted apart, as a refresh, and left out of the warm figure; how many taps refreshed, and
the most calls such a tap made, are printed beside it.

    python bench/tap.py            # 300 taps
    python bench/tap.py --quick    # or BENCH_QUICK=1: 120 taps

Budget (DESIGN.md): p95 ≤ 200 ms, DynamoDB round trips ≤ 2. Prints its figures, then as
the last line one JSON object; exits 1 when over budget.
"""

from __future__ import annotations

import dataclasses
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from localdev.stack import LocalStack, free_port  # noqa: E402

BUDGET_P95_MS = 200.0
BUDGET_ROUND_TRIPS = 2
WARMUP = 9  # taps: every operation three times, so every cache is warm


# What the API keeps in its TTL caches: a single read of one of these is a cache (re)load.
CACHED_KEYS = ("TERMINAL#", "MERCHANTS#", "EVENT#", "ISSUER#", "REBATE_RATES#")


class DynamoCounter:
    """Counts the requests moto's DynamoDB endpoint answers (in this process), and apart
    those that (re)load one of the API's cached lookups."""

    def __init__(self) -> None:
        self.count = 0
        self.cache_loads = 0
        self._lock = threading.Lock()

    def install(self) -> None:
        from moto.dynamodb.responses import DynamoHandler

        original = DynamoHandler.call_action
        counter = self

        def counted(handler):
            response = original(handler)  # parses the request into handler.body
            action = (handler.headers.get("X-Amz-Target") or "").rsplit(".", 1)[-1]
            load = action in ("GetItem", "Query") and any(key in str(handler.body) for key in CACHED_KEYS)
            with counter._lock:
                counter.count += 1
                counter.cache_loads += load
            return response

        DynamoHandler.call_action = counted


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def main(argv: list[str]) -> int:
    quick = "--quick" in argv or os.environ.get("BENCH_QUICK", "") not in ("", "0")
    taps = 120 if quick else 300
    import socket

    counter = DynamoCounter()
    counter.install()
    with tempfile.TemporaryDirectory() as state, LocalStack(
        api_port=free_port(), moto_port=free_port(), mail_port=free_port(), state_dir=Path(state), quiet=True
    ):
        # Imported once the stack has put its table in the environment: chalicelib binds its
        # models to the settings' table when first imported.
        from localdev.demo import FRESH
        from terminal_agent.agent import Agent
        from terminal_agent.card import CardReader
        from terminal_agent.config import AgentConfig
        from terminal_agent.emulator import spawned

        with spawned(free_port(socket.SOCK_DGRAM), FRESH.idm, balance=20000, seq=1) as device:
            config = AgentConfig.load(Path(state) / "agent-store.json")
            agent = Agent(dataclasses.replace(config, device=device, queue_path=Path(state) / "queue.sqlite"))
            operations = [
                ("balance", lambda card: agent.balance(card)),
                ("point_payment", lambda card: agent.pay_points(card, 1)),
                ("emoney_payment", lambda card: agent.record_emoney(card, 100)),
            ]
            times_ms: dict[str, list[float]] = {name: [] for name, _ in operations}
            round_trips: dict[str, int] = {name: 0 for name, _ in operations}  # warm taps
            refreshes: dict[str, list[int]] = {name: [] for name, _ in operations}  # calls of taps that reloaded
            with CardReader(device) as reader:
                for i in range(taps + WARMUP):
                    name, operate = operations[i % len(operations)]
                    before, loads_before = counter.count, counter.cache_loads
                    start = time.perf_counter()
                    card = reader.tap(timeout_s=10)
                    if card is None:
                        raise SystemExit("the card was not read")
                    operate(card)
                    elapsed = (time.perf_counter() - start) * 1000
                    if i >= WARMUP:
                        times_ms[name].append(elapsed)
                        calls = counter.count - before
                        if counter.cache_loads > loads_before:
                            refreshes[name].append(calls)
                        else:
                            round_trips[name] = max(round_trips[name], calls)
            agent.close()

    every = [t for values in times_ms.values() for t in values]
    for name, values in times_ms.items():
        print(f"  {name:15} n={len(values):4}  p50 {statistics.median(values):6.1f} ms  "
              f"p95 {percentile(values, 95):6.1f} ms  DynamoDB round trips {round_trips[name]} warm"
              + (f"  ({len(refreshes[name])} taps reloaded a cache: at most {max(refreshes[name])} calls)"
                 if refreshes[name] else ""))
    result = {
        "tap_p50_ms": round(statistics.median(every), 1),
        "tap_p95_ms": round(percentile(every, 95), 1),
        "ddb_round_trips_max": max(round_trips.values()),
    }
    print(f"  all {len(every)} taps: p50 {result['tap_p50_ms']} ms, p95 {result['tap_p95_ms']} ms; "
          f"budget p95 <= {BUDGET_P95_MS:.0f} ms, round trips <= {BUDGET_ROUND_TRIPS}")
    print(json.dumps(result))
    over = result["tap_p95_ms"] > BUDGET_P95_MS or result["ddb_round_trips_max"] > BUDGET_ROUND_TRIPS
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
