"""Demo data for the local stack, loaded through the ledger service like real traffic.

Every change carries a fixed request id, so loading twice replays the stored results
instead of writing again: the loader is idempotent by the ledger's own rule, not by a
check of its own.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

from chalicelib.campaigns.service import Campaigns
from chalicelib.ledger import domain
from chalicelib.ledger.domain import Actor, Issuer, Source
from chalicelib.ledger.errors import CardAlreadyExists
from chalicelib.ledger.service import Ledger, utc_now
from chalicelib.ledger.store import CardStore
from chalicelib.reports.store import ledger_aggregates
from chalicelib.terminals.domain import Event, Merchant, Mode, Terminal
from chalicelib.terminals.service import TerminalService

ISSUER = "niimi"
JST = ZoneInfo("Asia/Tokyo")

OPERATOR = Actor("operator", "demo-import")
REBATE_JOB = Actor("job", "monthly-rebate")
TERMINAL = Actor("terminal", "demo-terminal-1", merchant="demo-merchant")


@dataclass(frozen=True)
class DemoCardSpec:
    label: str
    card_number: str
    idm: str
    birth_date: str


# (a) a fresh card: 5,000 pt granted today.
FRESH = DemoCardSpec("5,000 pt granted today", "JW010000000000001", "01010000de000001", "1985-04-01")
# (b) SPEC §11 replayed at its historical dates.
WORKED = DemoCardSpec("SPEC §11 worked example", "JW010000000000002", "01010000de000002", "1970-11-30")


@dataclass
class DemoCard:
    spec: DemoCardSpec
    shows: str = ""
    steps: list[str] = field(default_factory=list)


class SettableClock:
    """A clock the loader moves to each historical business date (10:00 JST)."""

    def __init__(self) -> None:
        self.now = utc_now()

    def __call__(self) -> datetime:
        return self.now

    def set(self, day: date) -> None:
        self.now = datetime.combine(day, time(10, 0), JST).astimezone(timezone.utc)


def load_demo(store: CardStore, now: Callable[[], datetime] = utc_now) -> list[DemoCard]:
    """Put the issuer Niimi and the demo cards. Safe to run any number of times."""
    store.put_issuer(Issuer(ISSUER))  # a plain put of the same settings: re-running is harmless
    return [_fresh_card(Ledger(store, clock=now, extra_writes=ledger_aggregates)), _worked_example(store, now)]


def _open(ledger: Ledger, spec: DemoCardSpec) -> None:
    try:
        ledger.open_card(idm=spec.idm, card_number=spec.card_number, issuer_id=ISSUER, birth_date=spec.birth_date)
    except CardAlreadyExists:
        pass  # loaded before; the changes below replay their stored results


def _fresh_card(ledger: Ledger) -> DemoCard:
    demo = DemoCard(FRESH)
    _open(ledger, FRESH)
    # No granted_on: the grant is dated the ledger's today, and the request's
    # fingerprint stays the same whichever day the loader runs.
    r = ledger.grant(FRESH.idm, 5000, request_id="demo-a-initial", actor=OPERATOR, source=Source.INITIAL)
    demo.steps.append(f"initial grant 5,000 pt on {r['valid_from']}, valid to {r['expires_on']}")
    view = ledger.balance(FRESH.idm)
    expiry = ", ".join(f"{lot.remaining:,} pt until {lot.expires_on}" for lot in view.lots)
    demo.shows = f"balance {view.balance:,} pt today ({expiry})"
    return demo


def _worked_example(store: CardStore, now: Callable[[], datetime]) -> DemoCard:
    clock = SettableClock()
    ledger = Ledger(store, clock=clock, extra_writes=ledger_aggregates)
    demo = DemoCard(WORKED)
    _open(ledger, WORKED)

    clock.set(date(2022, 10, 24))
    r = ledger.grant(WORKED.idm, 5000, request_id="demo-b-initial", actor=OPERATOR, source=Source.INITIAL,
                     granted_on=date(2022, 10, 24))
    demo.steps.append(f"2022-10-24 initial grant 5,000 pt, valid to {r['expires_on']}")

    clock.set(date(2022, 11, 30))
    r = ledger.grant(WORKED.idm, 123, request_id="demo-b-rebate-2022-10", actor=REBATE_JOB, source=Source.REBATE,
                     granted_on=date(2022, 11, 30))
    demo.steps.append(f"2022-11-30 rebate 123 pt (October e-money 12,345 yen), valid to {r['expires_on']}")

    clock.set(date(2023, 4, 1))
    r = ledger.spend(WORKED.idm, 5050, request_id="demo-b-spend-2023-04-01", actor=TERMINAL)
    demo.steps.append(f"2023-04-01 point payment 5,050 pt at {TERMINAL.merchant}, balance {r['balance']:,} pt")

    clock.set(date(2023, 4, 24))
    r = ledger.spend(WORKED.idm, 100, request_id="demo-b-spend-2023-04-24", actor=TERMINAL, allow_shortfall=True)
    # Derived from the stored result, not a fresh read, so a re-run prints the same line.
    demo.steps.append(
        f"2023-04-24 balance {r['spent'] + r['balance']} pt; payment of 100 pt with shortfall allowed: "
        f"spent {r['spent']} pt, shortfall {r['shortfall']} pt (cash), balance {r['balance']} pt"
    )
    today = Ledger(store, clock=now).balance(WORKED.idm)
    demo.shows = f"balance {today.balance:,} pt today; history of {today.card.seq} entries (2022-10-24 … 2023-04-24)"
    return demo


# --- merchants, an event and terminals -------------------------------------------------

CARD_PORT = 55400  # where `python -m localdev.tap` puts the emulated card

MERCHANTS = (
    Merchant("demo-merchant", ISSUER, "にいみ精肉店", "新見", "食料品"),
    Merchant("demo-bookshop", ISSUER, "まんなか書店", "新見", "書籍・文具", rebate_bps=200),
    Merchant("demo-gas", ISSUER, "新見セルフ給油所", "新見", "ガソリンスタンド"),
)


@dataclass(frozen=True)
class DemoTerminal:
    name: str
    terminal_id: str
    mode: Mode
    merchant_id: str | None
    event_id: str | None
    what: str
    config_path: Path | None = None


TERMINALS = (
    DemoTerminal("store", "demo-terminal-1", Mode.STORE, "demo-merchant", None, "にいみ精肉店のレジ"),
    DemoTerminal("charger", "demo-charger-1", Mode.CHARGER, "demo-gas", None, "給油所のチャージ機"),
    DemoTerminal("event", "demo-event-1", Mode.EVENT, None, "demo-walk", "健康ウォークの受付"),
)


def load_demo_terminals(terminals: TerminalService, state_dir: Path, api_url: str) -> list[DemoTerminal]:
    """Register the demo merchants, an event open for 30 days from now, and a terminal of
    each mode. Each terminal's key is made once in `state_dir` (never committed) and an
    agent config beside it points at `api_url` and the emulated card's UDP port."""
    from terminal_agent.signing import generate_key, public_key_pem

    state_dir.mkdir(parents=True, exist_ok=True)
    for merchant in MERCHANTS:
        terminals.register_merchant(merchant)
    now = utc_now()
    walk = Event("demo-walk", ISSUER, "健康ウォーク", 500, now - timedelta(days=1), now + timedelta(days=30))
    terminals.register_event(walk)
    loaded = []
    for t in TERMINALS:
        key_path = state_dir / f"{t.terminal_id}.pem"
        public = public_key_pem(key_path.read_bytes()) if key_path.exists() else generate_key(key_path)
        terminals.register_terminal(
            Terminal(t.terminal_id, ISSUER, t.mode, public, merchant_id=t.merchant_id, event_id=t.event_id)
        )
        config_path = state_dir / f"agent-{t.name}.json"
        config = {
            "api_base": api_url,
            "terminal_id": t.terminal_id,
            "key_path": key_path.name,
            "device": f"udp:127.0.0.1:{CARD_PORT}",
            "mode": t.mode.value,
            "queue_path": f"queue-{t.name}.sqlite",
        }
        config_path.write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        loaded.append(replace(t, config_path=config_path))
    return loaded


# --- work for each scheduled job, due today -----------------------------------------------

# (c) a card with something for every daily job to do today
JOBS = DemoCardSpec("work for the daily jobs", "JW010000000000003", "01010000de000003", "1950-01-15")
# (d) a card whose 60 months without a grant or spend ended yesterday
DORMANT = DemoCardSpec("dormant since today", "JW010000000000004", "01010000de000004", "1948-07-07")
CAMPAIGN = "demo-charge"


def _start_for(last_day: date, months: int) -> date:
    """A grant day whose lot, valid `months`, is last usable on `last_day`."""
    day = last_day - timedelta(days=months * 31)
    while domain.expiry_date(day, months) < last_day:
        day += timedelta(days=1)
    return day


def _months_back(day: date, months: int) -> date:
    """The 10th of the month `months` before `day`'s."""
    index = day.year * 12 + day.month - 1 - months
    return date(index // 12, index % 12 + 1, 10)


def load_demo_jobs(
    terminals: TerminalService, campaigns: Campaigns, now: Callable[[], datetime] = utc_now
) -> list[DemoCard]:
    """A card with a lot that expired yesterday, one that expires in 30 days (sign up on
    MyPage with it to get the reminder), e-money payments of two months ago not yet
    rebated, charges of two months ago past a campaign's threshold; and a dormant card.
    Request ids carry the dates, so reloading on another day never conflicts."""
    from chalicelib.campaigns.domain import Campaign
    from chalicelib.campaigns.errors import CampaignExists
    from chalicelib.terminals.domain import CardTxn, TxnKind
    from chalicelib.terminals.store import TxnExists, txn_fingerprint

    ledger = terminals.ledger
    today = ledger.today(ISSUER)
    issuer = ledger.issuer(ISSUER)
    demo, dormant = DemoCard(JOBS), DemoCard(DORMANT)
    _open(ledger, JOBS)
    _open(ledger, DORMANT)

    def grant(spec: DemoCardSpec, points: int, granted_on: date, months: int, what: str) -> None:
        r = ledger.grant(spec.idm, points, request_id=f"demo-{spec.idm}-{granted_on}", actor=OPERATOR,
                         source=Source.ADMIN, granted_on=granted_on, validity_months=months, reason=what)
        (demo if spec is JOBS else dormant).steps.append(
            f"{granted_on} {what}: {points:,} pt valid to {r['expires_on']}")

    grant(JOBS, 300, _start_for(today - timedelta(days=1), 6), 6, "expiry job: expires it today")
    grant(JOBS, 200, _start_for(today + timedelta(days=30), 6), 6, "reminder job: e-mails linked members")

    paid = _months_back(today, 2)
    month = paid.strftime("%Y-%m")

    def record(kind: TxnKind, seq: int, amount: int, merchant: str, charge_kind: str | None = None) -> None:
        at = datetime.combine(paid, time(11, 0), JST).astimezone(timezone.utc)
        txn = CardTxn(kind=kind, issuer=ISSUER, idm=JOBS.idm, card_seq=seq, amount=amount, at=at, month=month,
                      terminal_id="demo-import", merchant_id=merchant, request_id=f"demo-txn-{month}-{seq}",
                      charge_kind=charge_kind, rebate_bps=issuer.rebate_bps if kind is TxnKind.EMONEY_PAYMENT else None)
        try:
            terminals.store.record_txn(txn, txn_fingerprint(txn), [], arrival_month=month, book=terminals.rebates)
        except TxnExists:
            pass  # loaded before

    record(TxnKind.EMONEY_PAYMENT, 1, 8_000, "demo-merchant")
    demo.steps.append(f"{paid} e-money 8,000 yen at にいみ精肉店: rebate job grants 80 pt (its day has passed)")

    try:
        campaigns.create(Campaign(ISSUER, CAMPAIGN, "チャージでポイント（デモ）", 2500, 5000, 20_000, 18,
                                  _months_back(today, 3).replace(day=1), _months_back(today, -3).replace(day=1),
                                  frozenset({"point-charge", "gas-station"})))
    except CampaignExists:
        pass
    campaigns.enrol(ISSUER, CAMPAIGN, JOBS.idm, _months_back(today, 3).replace(day=1))
    record(TxnKind.CHARGE, 2, 15_000, "demo-gas", "cash")
    record(TxnKind.CHARGE, 3, 6_000, "demo-gas", "cash")
    demo.steps.append(f"{paid} charges 21,000 yen (campaign {CAMPAIGN}, 25 % up to 5,000 pt past 20,000 yen): "
                      "campaign job grants 5,000 pt")

    last = today - timedelta(days=1)
    while not domain.is_dormant(last, issuer.dormancy_months, today):
        last -= timedelta(days=1)
    grant(DORMANT, 1_000, last, 72, "last activity; dormancy job voids it today")
    for card in (demo, dormant):
        card.shows = f"balance {ledger.balance(card.spec.idm).balance:,} pt today"
    return [demo, dormant]
