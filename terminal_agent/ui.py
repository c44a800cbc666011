"""The clerk's text UI, in Japanese: pick an operation, enter the amount, tap the card,
read the result. Input and output are functions (``input`` and ``print`` by default) so a
test can drive it with a script.

The menu is the configured mode's (a store, a charging machine, an event desk); the
server enforces the same split, so the menu only saves the clerk a refused request.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from .agent import Agent, AgentError, Recorded
from .card import CardRead, CardReaderError
from .client import ApiError, Offline
from .messages import describe, message
from .queue import NOT_SENT, FlushReport, RejectedRequest

Ask = Callable[[str], str]
Show = Callable[[str], None]
TAP_TIMEOUT_S = 15.0
QUIT = "q"
SEND_QUEUE = "s"


class Reader(Protocol):
    def tap(self, timeout_s: float = ...) -> CardRead | None: ...


# -- what a result looks like (also printed by `python -m terminal_agent tap`) ------------


def pt(points: int) -> str:
    return f"{points:,} pt"


def yen(amount: int) -> str:
    return f"{amount:,} 円"


def balance_lines(result: dict) -> list[str]:
    lines = [f"残高: {pt(result['balance'])}"]
    lines += [f"  {pt(lot['points'])}（{lot['expires_on']} まで）" for lot in result.get("lots", [])]
    if result.get("emoney_balance") is not None:
        lines.append(f"電子マネー残高: {yen(result['emoney_balance'])}")
    return lines


def payment_lines(result: dict) -> list[str]:
    lines = [f"ポイント支払い: {pt(result['spent'])}"]
    if result.get("shortfall"):
        lines.append(f"不足額: {yen(result['shortfall'])}（現金でお受け取りください）")
    lines.append(f"残高: {pt(result['balance'])}")
    if result.get("request_id"):
        lines.append(f"取引番号: {result['request_id']}")
    return lines


def points_cancel_lines(result: dict) -> list[str]:
    lines = [f"ポイント支払いを取り消しました: {pt(result['cancelled'])}"]
    if result.get("expired"):
        lines.append(f"うち有効期限切れのため失効: {pt(result['expired'])}")
    lines.append(f"残高: {pt(result['balance'])}")
    return lines


def recorded_lines(what: str, recorded: Recorded, card: CardRead | None = None) -> list[str]:
    """`what` is 'emoney', 'charge' or 'cancel'."""
    if recorded.queued:
        lines = [message({"emoney": "offline", "charge": "charge_offline", "cancel": "cancel_offline"}[what])]
        if recorded.reason == "stale_signature":
            lines.append(message("stale_signature"))
    else:
        result = recorded.result or {}
        if what == "cancel":
            lines = [f"電子マネー支払いの取消を記録しました: {yen(result['cancelled'])}"]
        else:
            label = "電子マネー支払い" if what == "emoney" else "チャージ"
            lines = [f"{label} {yen(result['amount'])} を記録しました（履歴番号 {result['card_seq']}）"]
            if result.get("duplicate"):
                lines.append("（この取引は既に記録されていました）")
    if card is not None and card.emoney_balance is not None and what != "cancel":
        lines.append(f"電子マネー残高: {yen(card.emoney_balance)}")
    return lines


def checkin_lines(result: dict) -> list[str]:
    return [
        f"{result['event']}: {pt(result['granted'])} を付与しました（{result['expires_on']} まで）",
        f"残高: {pt(result['balance'])}",
    ]


def flush_lines(report: FlushReport) -> list[str]:
    lines = [f"送信: {report.sent:,} 件、受付不可: {report.rejected:,} 件、未送信: {report.remaining:,} 件"]
    if report.stopped_by == "offline":
        lines.append(message("offline_retry"))
    elif report.stopped_by == "flush_running":
        lines.append("別の送信処理が実行中です。終わってからもう一度お試しください")
    elif report.stopped_by:
        lines.append(message(report.stopped_by))
    return lines


REQUEST_LABELS = {
    "/api/terminal/v1/emoney-payments": "電子マネー支払い記録",
    "/api/terminal/v1/emoney-payments/cancel": "電子マネー支払い取消",
    "/api/terminal/v1/charges": "チャージ記録",
    "/api/terminal/v1/point-payments/cancel": "ポイント支払い取消（応答のなかった支払いの取消）",
}


def rejected_lines(rows: list[RejectedRequest]) -> list[str]:
    """The queue's rejected rows for the operator: when, what, and why (the IDm shortened,
    as this may be read out over the phone)."""
    if not rows:
        return ["受付不可の記録はありません"]
    lines = [f"受付不可の記録: {len(rows):,} 件"]
    for row in rows:
        body = row.body if isinstance(row.body, dict) else {}
        what = REQUEST_LABELS.get(row.path, f"送信できない種類の記録（{row.path[:80]}）")
        why = message(row.code) if row.status == NOT_SENT else f"{row.status} {row.code}: {message(row.code)}"
        details = [f"{label} {body[k]}" for k, label in (("amount", "金額"), ("card_seq", "履歴番号"),
                   ("request_id", "取引番号")) if isinstance(body.get(k), str | int)]
        if isinstance(body.get("idm"), str):
            details.insert(0, f"IDm …{body['idm'][-4:]}")
        lines.append(f"#{row.id} {row.rejected_at} {what}: {why}")
        lines.append(f"    {', '.join(details) or '(内容を読み取れません)'} / {row.message}")
    return lines


# -- the menu ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Operation:
    label: str
    run: Callable[[], None]


class TerminalUI:
    def __init__(
        self,
        agent: Agent,
        reader: Reader,
        *,
        ask: Ask = input,
        show: Show = print,
        mode: str | None = None,
        tap_timeout_s: float = TAP_TIMEOUT_S,
    ) -> None:
        self.agent = agent
        self.reader = reader
        self._ask_fn = ask
        self.show = show
        self.mode = mode or agent.config.mode
        self.tap_timeout_s = tap_timeout_s
        self.operations = self._operations()

    def _operations(self) -> list[Operation]:
        by_mode = {
            "store": [
                Operation("残高照会", self.balance),
                Operation("ポイント支払い", lambda: self.pay(allow_shortfall=False)),
                Operation("ポイント支払い（不足分は現金）", lambda: self.pay(allow_shortfall=True)),
                Operation("ポイント支払い取消", self.cancel_points),
                Operation("電子マネー支払い記録", self.record_emoney),
                Operation("電子マネー支払い取消", self.cancel_emoney),
            ],
            "charger": [Operation("残高照会", self.balance), Operation("チャージ記録", self.record_charge)],
            "event": [Operation("来場チェックイン", self.checkin), Operation("残高照会", self.balance)],
        }
        return by_mode[self.mode]

    def run(self) -> None:
        """Until the clerk enters q (or input ends)."""
        while True:
            self._show_menu()
            choice = self.ask("番号を選んでください（q で終了）: ")
            if choice is None:
                self.show("終了します")
                return
            if choice == SEND_QUEUE:
                self.send_queue()
                continue
            if not choice.isdigit() or not 1 <= int(choice) <= len(self.operations):
                self.show(f"1〜{len(self.operations)} の番号を入力してください")
                continue
            operation = self.operations[int(choice) - 1]
            self.show(f"【{operation.label}】")
            operation.run()

    def _show_menu(self) -> None:
        self.show("")
        for number, operation in enumerate(self.operations, start=1):
            self.show(f"{number}. {operation.label}")
        waiting = self.agent.queue.count()
        if waiting:
            self.show(f"{SEND_QUEUE}. 未送信の記録を送信（{waiting:,} 件）")
        refused = self.agent.queue.rejected_count()
        if refused:
            # Not something the clerk can fix: each needs the operator (運営事務局).
            self.show(message("rejected_waiting", count=refused))

    # -- input ----------------------------------------------------------------------------

    def ask(self, prompt: str) -> str | None:
        """The clerk's answer, normalised (full-width digits and spaces are fine); None
        for q or the end of input."""
        try:
            text = self._ask_fn(prompt)
        except EOFError:
            return None
        text = unicodedata.normalize("NFKC", text).strip()
        return None if text.lower() == QUIT else text

    def ask_amount(self, prompt: str) -> int | None:
        while True:
            text = self.ask(prompt)
            if text is None:
                return None
            digits = text.replace(",", "").removesuffix("円").removesuffix("pt").strip()
            if digits.isdigit() and int(digits) > 0:
                return int(digits)
            self.show(message("invalid_amount"))

    def tap(self) -> CardRead | None:
        self.show("カードをタッチしてください")
        try:
            card = self.reader.tap(self.tap_timeout_s)
        except CardReaderError as exc:
            self.show(describe(exc))
            return None
        if card is None:
            self.show(message("no_card"))
        return card

    def attempt(self, action: Callable[[], list[str]]) -> None:
        """Run one operation and show its result, or the sentence for its refusal."""
        try:
            lines = action()
        except (ApiError, Offline, AgentError) as exc:
            lines = [describe(exc)]
        for line in lines:
            self.show(line)

    # -- operations -----------------------------------------------------------------------

    def balance(self) -> None:
        card = self.tap()
        if card is not None:
            self.attempt(lambda: balance_lines(self.agent.balance(card)))

    def pay(self, *, allow_shortfall: bool) -> None:
        amount = self.ask_amount("支払い金額（pt）: ")
        if amount is None:
            return
        card = self.tap()
        if card is not None:
            self.attempt(lambda: payment_lines(self.agent.pay_points(card, amount, allow_shortfall=allow_shortfall)))

    def cancel_points(self) -> None:
        card = self.tap()
        if card is None:
            return
        payment_id = self._pick_point_payment(card)
        if payment_id is not None:
            self.attempt(lambda: points_cancel_lines(self.agent.cancel_points(card, payment_id)))

    def _pick_point_payment(self, card: CardRead) -> str | None:
        payments = self.agent.point_payments_of(card)
        for number, payment in enumerate(payments, start=1):
            at = payment.at.astimezone().strftime("%H:%M")
            self.show(f"{number}. {at} {pt(payment.spent)}（取引番号 {payment.request_id[:8]}…）")
        prompt = "取り消す支払いの番号、または取引番号: " if payments else "取り消す支払いの取引番号: "
        while True:
            text = self.ask(prompt)
            if not text:
                return None
            if text.isdigit() and 1 <= int(text) <= len(payments):
                return payments[int(text) - 1].request_id
            if len(text) > 8:  # a full request id, as printed on the payment
                return text
            self.show("一覧の番号か、支払い時に表示された取引番号を入力してください")

    def record_emoney(self) -> None:
        amount = self.ask_amount("電子マネー支払い金額（円）: ")
        if amount is None:
            return
        card = self.tap()
        if card is not None:
            self.attempt(lambda: recorded_lines("emoney", self.agent.record_emoney(card, amount), card))

    def cancel_emoney(self) -> None:
        card = self.tap()
        if card is None:
            return
        default = card.last_seq
        hint = f"（Enter で {default}）" if default is not None else ""
        while True:
            text = self.ask(f"取り消す支払いの履歴番号{hint}: ")
            if text is None:
                return
            if not text and default is not None:
                card_seq = default
                break
            if text.isdigit() and int(text) <= 0xFFFF:
                card_seq = int(text)
                break
            self.show("履歴番号は 0〜65535 の数字で入力してください")
        self.attempt(lambda: recorded_lines("cancel", self.agent.cancel_emoney(card, card_seq)))

    def record_charge(self) -> None:
        amount = self.ask_amount("チャージ金額（円）: ")
        if amount is None:
            return
        card = self.tap()
        if card is not None:
            self.attempt(lambda: recorded_lines("charge", self.agent.record_charge(card, amount, "cash"), card))

    def checkin(self) -> None:
        card = self.tap()
        if card is not None:
            self.attempt(lambda: checkin_lines(self.agent.checkin(card)))

    def send_queue(self) -> None:
        for line in flush_lines(self.agent.flush_queue()):
            self.show(line)
