"""MyPage rules, pure: addresses, codes, passwords, sessions, throttles, and how a
ledger entry reads to a resident.

Attempt limits (SPEC §8; NIST SP 800-63B: a 4-digit secret needs throttling, not length).
Days are JST business dates; counters for a day are keyed by that day, so a new day
starts from nothing without anyone resetting them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from ..ledger.domain import Entry, Op

CODE_VALID = timedelta(minutes=10)
CODE_TRIES = 5  # per code: the 6th try is refused even with the right code
CODES_PER_HOUR = 5  # per address and purpose
CODES_PER_DAY = 10  # per address, signup and reset together
CODE_FAILURES_PER_DAY = 20  # wrong or stale codes per address, signup and reset together
SOURCE_CODES_PER_HOUR = 30  # per source address, whatever the e-mail addresses
SOURCE_CODE_FAILURES_PER_HOUR = 60
SIGNUP_VALID = timedelta(minutes=30)  # from a verified code to a finished signup
SESSION_IDLE = timedelta(minutes=30)
SESSION_MAX = timedelta(hours=12)
SESSION_TOUCH = timedelta(minutes=1)  # how often a request refreshes the idle deadline
PASSWORD_MIN, PASSWORD_MAX = 8, 128
# Login: per (address, source) a few failures are free, then each failure makes the next
# attempt from that pair wait, the wait doubling up to a cap. A stranger failing from
# elsewhere slows only himself; the owner's own pair is untouched.
LOGIN_FREE_FAILURES = 3
LOGIN_FIRST_WAIT = timedelta(seconds=30)
LOGIN_MAX_WAIT = timedelta(hours=1)
LOGIN_FORGET = timedelta(days=1)  # a pair's failures are forgotten a day after the last one
LOGIN_FAILURES_PER_IP = 50  # attempts per source address in LOGIN_WINDOW, whatever the addresses
LOGIN_WINDOW = timedelta(minutes=15)
LINK_FAILURES_PER_DAY = 5  # per card number, across members and addresses; and per member or address
EXPIRING_SOON = timedelta(days=30)
PASSWORD_MIN_SCORE = 2  # zxcvbn: below this (fewer than 10^6 guesses) a password is refused


def normalize_email(text: str) -> str | None:
    """The address as we key it, or None if it is not one: RFC 5321's shape as
    email-validator checks it (no DNS look-up), a local part of at most 64 octets and at
    most 254 in all, then the ASCII form (IDNA domain) in lower case."""
    from email_validator import EmailNotValidError, validate_email

    try:
        checked = validate_email(text.strip(), check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError:
        return None
    email = checked.ascii_email.lower()
    if len(email) > 254 or len(email.rsplit("@", 1)[0]) > 64:
        return None
    return email


def password_ok(password: str) -> bool:
    return PASSWORD_MIN <= len(password) <= PASSWORD_MAX


def password_common(password: str, user_inputs: tuple[str, ...] = ()) -> bool:
    """True for a password on zxcvbn's lists of common and breached passwords (whole, or
    with its usual variations: case, l33t, a year or digits added), or otherwise guessed in
    fewer than a million tries; `user_inputs` (the address) count as known words."""
    from zxcvbn import zxcvbn

    found = zxcvbn(password, user_inputs=list(user_inputs), max_length=PASSWORD_MAX)
    whole_common = any(m.get("dictionary_name") == "passwords" and m["token"].lower() == password.lower()
                       for m in found["sequence"])
    return whole_common or found["score"] < PASSWORD_MIN_SCORE


def login_wait(failures: int) -> timedelta:
    """How long a (address, source) pair waits after its `failures`-th failure in a row."""
    if failures < LOGIN_FREE_FAILURES:
        return timedelta(0)
    return min(LOGIN_FIRST_WAIT * 2 ** (failures - LOGIN_FREE_FAILURES), LOGIN_MAX_WAIT)


def wait_message(until_local: datetime, seconds: int) -> str:
    """A Japanese refusal saying when to try again (`until_local` in the issuer's zone)."""
    span = f"{seconds}秒" if seconds < 60 else f"{-(-seconds // 60)}分"
    return (f"失敗が続いたため、一時的に受け付けを停止しています。{until_local:%H時%M分}（約{span}後）"
            "以降にもう一度お試しください。")


DAY_LIMIT_MESSAGE = "本日の受け付けの上限に達しました。明日（日本時間の0時以降）にもう一度お試しください。"


def mask_card_number(number: str) -> str:
    return number[:2] + "•" * (len(number) - 5) + number[-3:]


@dataclass(frozen=True)
class Member:
    """A resident's account: the address she signed up with (reminders go to it)."""

    member_id: str
    email: str
    password_hash: str
    expiry_reminders: bool


@dataclass(frozen=True)
class Link:
    """A member's linked card: its IDm and its number as MyPage shows it (masked)."""

    link_id: str
    idm: str
    card_number_masked: str
    linked_at: datetime


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


def window_start(now: datetime, span: timedelta) -> datetime:
    """The start of the fixed window of length `span` (dividing the day) that holds `now`."""
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return midnight + span * ((now - midnight) // span)


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


def link_notice_mail(point_name: str, card_number_masked: str, linked_on: date) -> tuple[str, str]:
    """Subject and body of the e-mail to a card's members when another account links the
    card. It says which card (masked) and when, and nothing about who linked it."""
    subject = f"【{point_name}】カードが別のマイページに登録されました"
    body = (
        f"{point_name}をご利用いただきありがとうございます。\n\n"
        "あなたのマイページに登録されている次のカードが、別のマイページのアカウントにも登録されました。\n\n"
        f"カード番号: {card_number_masked}\n"
        f"登録日: {japanese_date(linked_on)}\n\n"
        "ご家族による登録など、お心当たりがある場合は、このメールへの対応は不要です。\n"
        "お心当たりのない場合は、お手数ですがカードをお持ちになり、市の窓口までご相談ください。\n"
        "（このメールは送信専用です。ご返信いただいてもお答えできません。）\n"
    )
    return subject, body


def limit_notice_mail(point_name: str) -> tuple[str, str]:
    """Subject and body of the one notice an address gets on the day its code limits are
    reached. The same whether or not the address is registered."""
    subject = f"【{point_name}】確認コードの受け付けを本日停止しました"
    body = (
        f"{point_name} マイページで、このメールアドレスあての確認コードの発行または入力が、"
        "本日の上限に達しました。\n"
        "本日はこのメールアドレスで確認コードを使う手続き（利用登録・パスワードの再設定）を受け付けません。"
        "明日（日本時間の0時以降）にもう一度お試しください。\n\n"
        "お心当たりのない場合は、第三者が操作した可能性があります。パスワードは変更されていません。\n"
        "（このメールは送信専用です。ご返信いただいてもお答えできません。）\n"
    )
    return subject, body
