"""MyPage rules, pure: addresses, codes, passwords, sessions, throttles, and how a
ledger entry reads to a resident."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from ..ledger.domain import Entry, Op

CODE_VALID = timedelta(minutes=10)
CODE_TRIES = 5  # per code: the 6th try is refused even with the right code
CODES_PER_HOUR = 5  # per address
SIGNUP_VALID = timedelta(minutes=30)  # from a verified code to a finished signup
SESSION_IDLE = timedelta(minutes=30)
SESSION_MAX = timedelta(hours=12)
SESSION_TOUCH = timedelta(minutes=1)  # how often a request refreshes the idle deadline
PASSWORD_MIN, PASSWORD_MAX = 8, 128
LOGIN_FAILURES_PER_ADDRESS = 5  # within LOGIN_WINDOW, then refused for the rest of it
LOGIN_FAILURES_PER_IP = 50
LOGIN_WINDOW = timedelta(minutes=15)
LINK_FAILURES_PER_DAY = 5
EXPIRING_SOON = timedelta(days=30)

_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,255}\.[^@\s]{2,63}$")


def normalize_email(text: str) -> str | None:
    """The address as we key it (trimmed, lower case), or None if it is not one."""
    email = text.strip().lower()
    return email if len(email) <= 254 and _EMAIL.match(email) else None


def password_ok(password: str) -> bool:
    return PASSWORD_MIN <= len(password) <= PASSWORD_MAX


def mask_card_number(number: str) -> str:
    return number[:2] + "•" * (len(number) - 5) + number[-3:]


@dataclass(frozen=True)
class Window:
    """Events of one kind for one key, kept to count them over a sliding window."""

    times: tuple[datetime, ...]

    def recent(self, now: datetime, span: timedelta) -> int:
        return sum(1 for t in self.times if now - t < span)

    def add(self, now: datetime, span: timedelta) -> Window:
        return Window(tuple(t for t in self.times if now - t < span) + (now,))


def session_deadline(created: datetime, last_seen: datetime) -> datetime:
    return min(last_seen + SESSION_IDLE, created + SESSION_MAX)


def end_of_day(day: date) -> datetime:
    return datetime.combine(day + timedelta(days=1), datetime.min.time())


# --- how entries read to a resident --------------------------------------------------

_IN = {Op.GRANT: 1, Op.TRANSFER_IN: 1, Op.CANCEL: 1, Op.SPEND: -1, Op.EXPIRE: -1, Op.VOID: -1, Op.TRANSFER_OUT: -1}

_GRANT_LABELS = {
    "initial": "ポイント付与（カード発行）",
    "rebate": "電子マネー利用分の還元",
    "event": "イベント参加",
    "admin": "行政ポイント",
    "campaign": "キャンペーン",
    "transfer": "再発行カードからの移行",
}


def net_points(entry: Entry) -> int:
    """What the entry did to the card's points, signed."""
    return sum(_IN[m.op] * m.amount for m in entry.movements)


def entry_label(entry: Entry, merchant_names: dict[str, str]) -> str:
    """A short Japanese description of an entry."""
    if entry.kind == "grant":
        return _GRANT_LABELS.get(entry.result.get("source", ""), "ポイント付与")
    if entry.kind == "spend":
        shop = merchant_names.get(entry.actor.merchant or "", "加盟店")
        return f"ポイント利用（{shop}）"
    if entry.kind == "rebate_clawback":
        return _rebate_clawback_label(entry, merchant_names)
    return {
        "spend_cancel": "ポイント利用の取消",
        "expire": "有効期限切れ",
        "void": "ポイントの無効化",
        "transfer": "カード再発行による移行",
    }.get(entry.kind, "ポイントの変更")


def _rebate_clawback_label(entry: Entry, merchant_names: dict[str, str]) -> str:
    """A rebate taken back because an e-money payment of its month was cancelled (§6.2):
    which month's rebate, and the store whose cancel it was."""
    year, _, month = str(entry.result.get("month", "")).partition("-")
    shop = merchant_names.get(entry.actor.merchant or "", "加盟店")
    when = f"{int(year)}年{int(month)}月分の" if year.isdigit() and month.isdigit() else ""
    return f"{when}電子マネー還元の取消（{shop}での決済の取消による）"


# --- expiry reminders ------------------------------------------------------------------

REMIND_BEFORE = timedelta(days=30)  # a lot is reminded of this long before its expires_on
_WEEKDAYS = "月火水木金土日"


def japanese_date(day: date) -> str:
    return f"{day.year}年{day.month}月{day.day}日（{_WEEKDAYS[day.weekday()]}）"


def reminder_mail(point_name: str, card_number_masked: str, points: int, expires_on: date) -> tuple[str, str]:
    """Subject and body of the e-mail about one lot nearing its expiry. It carries no link
    and nothing that identifies the card beyond its masked number."""
    subject = f"【{point_name}】有効期限が近いポイントのお知らせ"
    body = (
        f"{point_name}をご利用いただきありがとうございます。\n\n"
        "次のポイントの有効期限が近づいています。\n\n"
        f"カード番号: {card_number_masked}\n"
        f"ポイント: {points:,}ポイント\n"
        f"有効期限: {japanese_date(expires_on)}まで\n\n"
        "有効期限を過ぎたポイントはご利用いただけなくなります。期限までに加盟店でご利用ください。\n"
        "残高と有効期限はマイページでご確認いただけます。\n"
        "このお知らせが不要な場合は、マイページの「設定」から配信を停止できます。\n"
        "（このメールは送信専用です。ご返信いただいてもお答えできません。）\n"
    )
    return subject, body
