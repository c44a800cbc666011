"""MyPage use cases: signup by e-mail code, login, sessions, linked cards and what a
member sees of them, preferences, password change and reset, withdrawal.

Addresses and codes are stored only as keyed hashes (HMAC-SHA256 with the deployment's
secret) except the address a member signed up with, which reminders are sent to.
Answers never tell whether an address is known: a reset for an unknown address stores a
code too (one nobody is sent), so its tries, limits and refusals run the same course.

Attempt limits (SPEC §8, numbers in domain.py) count in TTL'd counters keyed by keyed
hashes and the period; a limit is taken before the attempt is judged (one conditional
update) and given back when the attempt turns out right, so requests sent at the same
time cannot all slip under it. Every refusal is counted in the MyPageRefused metric.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from .. import observability
from ..ledger.domain import Card
from ..ledger.errors import CardNotFound
from ..ledger.service import Ledger
from ..mail import Mailer
from ..observability import logger
from ..terminals.domain import Merchant
from . import domain, keys
from .domain import Link, Member
from .errors import (
    CardAlreadyLinked,
    CardMismatch,
    CardNotLinked,
    CodeInvalid,
    CommonPassword,
    CsrfFailed,
    InvalidEmail,
    InvalidInput,
    LinkLocked,
    LoginFailed,
    NotLoggedIn,
    SignupExpired,
    TooManyAttempts,
    WeakPassword,
)
from .store import Conflict, MyPageStore, Session

SIGNUP, RESET = "signup", "reset"


@dataclass(frozen=True)
class LoggedIn:
    """A session: its cookie value (given once) and the CSRF token that goes with it."""

    member_id: str
    cookie: str
    csrf_token: str


class _Passwords:
    """argon2id, built on first use (the library loads a native extension)."""

    def __init__(self) -> None:
        from argon2 import PasswordHasher

        self.hasher = PasswordHasher()
        # Verifying against this when an address is unknown keeps both paths equally slow.
        self.dummy = self.hasher.hash(secrets.token_urlsafe(16))

    def hash(self, password: str) -> str:
        return self.hasher.hash(password)

    def verify(self, password_hash: str, password: str) -> bool:
        from argon2.exceptions import Argon2Error

        try:
            return self.hasher.verify(password_hash, password)
        except Argon2Error:
            return False


class MyPage:
    def __init__(
        self,
        ledger: Ledger,
        store: MyPageStore,
        mailer: Mailer,
        secret: bytes,
        *,
        issuer_id: str = "niimi",
        merchants: Callable[[str], list[Merchant]] = lambda issuer: [],
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.ledger = ledger
        self.store = store
        self.mailer = mailer
        self.secret = secret
        self.issuer_id = issuer_id
        self.merchants = merchants
        self.clock = clock or ledger.clock
        self._passwords: _Passwords | None = None

    @property
    def passwords(self) -> _Passwords:
        if self._passwords is None:
            self._passwords = _Passwords()
        return self._passwords

    def _key(self, purpose: str, value: str) -> str:
        return hmac.new(self.secret, f"{purpose}:{value}".encode(), hashlib.sha256).hexdigest()

    def _email_key(self, email: str) -> str:
        return self._key("email", email)

    def _email(self, text: str) -> str:
        email = domain.normalize_email(text)
        if email is None:
            raise InvalidEmail()
        return email

    def _today(self) -> date:
        return self.ledger.today(self.issuer_id)

    def _zone(self) -> ZoneInfo:
        return ZoneInfo(self.ledger.issuer(self.issuer_id).time_zone)

    def _day_key(self, key: str) -> tuple[str, datetime]:
        """`key` for today (JST), and when today ends (the counter's expiry)."""
        today = self._today()
        return keys.day_period(key, today), datetime.combine(today + timedelta(days=1), time.min, tzinfo=self._zone())

    def _window_key(self, key: str, span: timedelta) -> tuple[str, datetime]:
        start = domain.window_start(self.clock(), span)
        return keys.window_period(key, start), start + span

    def _check_password(self, password: str, email: str) -> None:
        if not domain.password_ok(password):
            raise WeakPassword()
        if domain.password_common(password, (email, email.split("@")[0])):
            raise CommonPassword()

    # -- refusals ------------------------------------------------------------------------

    def _refused(self, reason: str, error: Exception) -> Exception:
        """Count and log a refusal (the runbook reads `reason`); returns the error to raise."""
        observability.count(observability.MYPAGE_REFUSED)
        logger().info("mypage refused", extra={"reason": reason})
        return error

    def _until(self, reason: str, until: datetime) -> Exception:
        seconds = max(1, int((until - self.clock()).total_seconds() + 0.999))
        return self._refused(reason, TooManyAttempts(
            domain.wait_message(until.astimezone(self._zone()), seconds), retry_after=seconds))

    def _day_refusal(self, reason: str, day_ends: datetime) -> Exception:
        seconds = max(1, int((day_ends - self.clock()).total_seconds()))
        return self._refused(reason, TooManyAttempts(domain.DAY_LIMIT_MESSAGE, retry_after=seconds))

    def _notice_once(self, email: str, email_key: str) -> None:
        """The one notice of the day that the address's code limits are reached."""
        key, day_ends = self._day_key(email_key)
        if self.store.take("code-notice", key, 1, day_ends) is not None:
            subject, body = domain.limit_notice_mail(self.ledger.issuer(self.issuer_id).point_name)
            self.mailer.send(email, subject, body)
            logger().info("code limit notice sent", extra={"address_key": email_key[:12]})

    # -- throttles ---------------------------------------------------------------------

    def _record(self, scope: str, key: str, span: timedelta, limit: int | None = None) -> bool:
        """Add an event to the window; with `limit`, only while fewer than `limit` are in it."""
        for _ in range(10):
            now = self.clock()
            window, version = self.store.window(scope, key)
            if limit is not None and window.recent(now, span) >= limit:
                return False
            try:
                self.store.save_window(scope, key, window.add(now, span), version, now + span)
                return True
            except Conflict:
                continue  # a concurrent request added one: count again
        raise TooManyAttempts()

    # -- codes -------------------------------------------------------------------------

    def _new_code(self, purpose: str, email: str, source: str) -> str:
        """Take the limits for one more code to the address and store it; returns the code.
        A limit refused gives back the ones already taken, so a refusal counts nothing."""
        email_key = self._email_key(email)
        day_key, day_ends = self._day_key(email_key)
        if self.store.count("code-failures", day_key) >= domain.CODE_FAILURES_PER_DAY:
            raise self._day_refusal("code_failures_per_day", day_ends)
        codes_today = self.store.take("codes", day_key, domain.CODES_PER_DAY, day_ends)
        if codes_today is None:
            raise self._day_refusal("codes_per_day", day_ends)
        source_key, source_ends = self._window_key(self._key("ip", source), timedelta(hours=1))
        if self.store.take("codes-source", source_key, domain.SOURCE_CODES_PER_HOUR, source_ends) is None:
            self.store.give_back("codes", day_key)
            raise self._until("codes_per_source", source_ends)
        if not self._record(f"codes-{purpose}", email_key, timedelta(hours=1), limit=domain.CODES_PER_HOUR):
            self.store.give_back("codes", day_key)
            self.store.give_back("codes-source", source_key)
            raise self._refused("codes_per_hour", TooManyAttempts())
        code = f"{secrets.randbelow(10_000):04d}"
        self.store.put_code(purpose, email_key, self._key("code", code), self.clock() + domain.CODE_VALID)
        if codes_today == domain.CODES_PER_DAY:
            self._notice_once(email, email_key)
        return code

    def _send_code(self, purpose: str, email: str, subject: str, body: Callable[[str], str], source: str) -> None:
        code = self._new_code(purpose, email, source)
        self.mailer.send(email, subject, body(code))
        logger().info("code sent", extra={"purpose": purpose, "address_key": self._email_key(email)[:12]})

    def _check_code(self, purpose: str, email: str, code: str, source: str) -> None:
        """One try of the address's code. The try is counted against the address's and the
        source's failures first, and given back if the code is right."""
        email_key = self._email_key(email)
        day_key, day_ends = self._day_key(email_key)
        failures_today = self.store.take("code-failures", day_key, domain.CODE_FAILURES_PER_DAY, day_ends)
        if failures_today is None:
            raise self._day_refusal("code_failures_per_day", day_ends)
        source_key, source_ends = self._window_key(self._key("ip", source), timedelta(hours=1))
        if self.store.take("code-failures-source", source_key, domain.SOURCE_CODE_FAILURES_PER_HOUR,
                           source_ends) is None:
            self.store.give_back("code-failures", day_key)
            raise self._until("code_failures_per_source", source_ends)

        def not_a_failure() -> None:
            self.store.give_back("code-failures", day_key)
            self.store.give_back("code-failures-source", source_key)

        try:
            stored = self.store.try_code(purpose, email_key, domain.CODE_TRIES)
        except Conflict as exc:
            not_a_failure()
            raise self._refused("code_tries", TooManyAttempts()) from exc
        right = (stored is not None and stored.expires_at >= self.clock()
                 and hmac.compare_digest(stored.code_hash, self._key("code", code.strip())))
        if not right:
            if failures_today == domain.CODE_FAILURES_PER_DAY:
                self._notice_once(email, email_key)
            if stored is None or stored.expires_at < self.clock():
                raise CodeInvalid()
            raise CodeInvalid(tries_left=domain.CODE_TRIES - stored.tries)
        not_a_failure()
        self.store.delete_code(purpose, email_key)

    # -- signup --------------------------------------------------------------------------

    def start_signup(self, email_text: str, source: str = "unknown") -> None:
        """Send a code, or to a known address a note that it is registered: the answer is
        the same either way."""
        email = self._email(email_text)
        if self.store.address_registered(self._email_key(email)):
            self._send_code(SIGNUP, email, "にーみんポイント マイページ登録について", _already_registered, source)
        else:
            self._send_code(SIGNUP, email, "にーみんポイント マイページ 確認コード", _signup_code, source)

    def verify_signup(self, email_text: str, code: str, source: str = "unknown") -> str:
        email = self._email(email_text)
        self._check_code(SIGNUP, email, code, source)
        if self.store.member_by_email(self._email_key(email)) is not None:
            raise CodeInvalid()  # the note sent to a registered address carries no code
        token = secrets.token_urlsafe(32)
        self.store.put_signup(self._key("signup", token), email, self.clock() + domain.SIGNUP_VALID)
        return token

    def complete_signup(self, token: str, card_number: str, birth_date: str, password: str) -> LoggedIn:
        signup_key = self._key("signup", token)
        found = self.store.signup(signup_key)
        if found is None or found[1] < self.clock():
            raise SignupExpired()
        email = found[0]
        self._check_password(password, email)
        card = self._matching_card(self._key("email", email), card_number, birth_date)
        member = Member(secrets.token_urlsafe(16), email, self.passwords.hash(password), True)
        link = Link(secrets.token_urlsafe(12), card.idm, domain.mask_card_number(card.card_number), self.clock())
        try:
            self.store.create_member(member, self._email_key(email), signup_key, link, self.clock(), self.issuer_id)
        except Conflict as exc:
            raise SignupExpired() from exc
        self._tell_card_members(link, member.member_id)
        return self._new_session(member.member_id)

    def _matching_card(self, who: str, card_number: str, birth_date: str) -> Card:
        """The issued, active card with this number and holder birth date. Five failures
        in a (JST) day on one card number, whoever tried, lock that card out of linking
        until the day ends; five failures by one `who` (an address or a member) lock `who`
        out. The try is counted before the birth date is compared, and given back when
        it matches."""
        number = card_number.strip().upper()
        card_key, day_ends = self._day_key(self._key("card", number))
        who_key, _ = self._day_key(who)
        retry_after = max(1, int((day_ends - self.clock()).total_seconds()))
        if self.store.take("link-failures-card", card_key, domain.LINK_FAILURES_PER_DAY, day_ends) is None:
            raise self._refused("link_failures_per_card", LinkLocked(retry_after))
        if self.store.take("link-failures", who_key, domain.LINK_FAILURES_PER_DAY, day_ends) is None:
            self.store.give_back("link-failures-card", card_key)
            raise self._refused("link_failures_per_member", LinkLocked(retry_after))
        card = self._card_by_number(number)
        stored = self.ledger.card_record(card.idm) if card else None
        if stored is None or stored.card.status.closed or stored.birth_date != birth_date.strip():
            logger().info("card link refused", extra={"who": who[:12]})
            raise CardMismatch()
        self.store.give_back("link-failures-card", card_key)
        self.store.give_back("link-failures", who_key)
        return stored.card

    def _tell_card_members(self, link: Link, new_member_id: str) -> None:
        """Mail the card's other members that it has been linked to another account."""
        others = [m for m in self.store.card_members(link.idm) if m != new_member_id]
        if not others:
            return
        subject, body = domain.link_notice_mail(self.ledger.issuer(self.issuer_id).point_name,
                                                link.card_number_masked, self._today())
        for member_id in others:
            member = self.store.member(member_id)
            if member is not None:
                self.mailer.send(member.email, subject, body)
        logger().info("link notice sent", extra={"members": len(others)})

    def _card_by_number(self, card_number: str) -> Card | None:
        idm = self.ledger.idm_for_number(card_number)
        if idm is None:
            return None
        try:
            card = self.ledger.card(idm)
        except CardNotFound:
            return None
        return card if card.issuer == self.issuer_id else None

    # -- sessions ------------------------------------------------------------------------

    def _new_session(self, member_id: str) -> LoggedIn:
        token = secrets.token_urlsafe(32)
        now = self.clock()
        session = Session(member_id, _sha256(token), now, now)
        self.store.put_session(session, domain.session_deadline(now, now))
        return LoggedIn(member_id, f"{member_id}.{token}", self._csrf(token))

    def _csrf(self, token: str) -> str:
        return self._key("csrf", token)

    def login(self, email_text: str, password: str, source_ip: str) -> LoggedIn:
        """Throttled per (address, source): after a few failures in a row, the next
        attempt from that pair must wait, the wait doubling (domain.login_wait). The owner
        signing in from her own source is not slowed by a stranger failing elsewhere.
        Per source, attempts are limited across addresses. Each attempt is counted as a
        failure before the password is checked and forgotten when it is right."""
        email = self._email(email_text)
        email_key = self._email_key(email)
        pair_key = self._key("login", f"{email}\n{source_ip}")
        now = self.clock()
        seen = self.store.login_failures(pair_key)
        if seen is not None and seen.wait_until > now:
            raise self._until("login_wait", seen.wait_until)
        source_key, source_ends = self._window_key(self._key("ip", source_ip), domain.LOGIN_WINDOW)
        if self.store.take("login-source", source_key, domain.LOGIN_FAILURES_PER_IP, source_ends) is None:
            raise self._until("login_per_source", source_ends)
        failures = (seen.failures if seen and seen.expires_at > now else 0) + 1
        try:
            self.store.count_login_failure(pair_key, seen.failures if seen else None, failures,
                                           now + domain.login_wait(failures), now + domain.LOGIN_FORGET)
        except Conflict as exc:  # another attempt of the same pair at the same moment
            self.store.give_back("login-source", source_key)
            raise self._until("login_concurrent", now + timedelta(seconds=1)) from exc
        member = self.store.member_by_email(email_key)
        ok = self.passwords.verify(member.password_hash if member else self.passwords.dummy, password)
        if member is None or not ok:
            logger().info("login failed", extra={"address_key": email_key[:12], "failures": failures})
            raise LoginFailed()
        self.store.clear_login_failures(pair_key)
        self.store.give_back("login-source", source_key)
        logger().info("logged in", extra={"member": member.member_id})
        return self._new_session(member.member_id)

    def authenticate(self, cookie: str | None, csrf_header: str | None = None, *, changing: bool = False) -> Session:
        """The session of a request's cookie; for a state-changing request, also its CSRF token."""
        if not cookie or "." not in cookie:
            raise NotLoggedIn()
        member_id, token = cookie.split(".", 1)
        session = self.store.session(member_id, _sha256(token))
        now = self.clock()
        if session is None or domain.session_deadline(session.created_at, session.last_seen) <= now:
            raise NotLoggedIn()
        if changing and not (csrf_header and hmac.compare_digest(csrf_header, self._csrf(token))):
            raise CsrfFailed()
        if now - session.last_seen >= domain.SESSION_TOUCH:
            self.store.touch_session(session, now, domain.session_deadline(session.created_at, now))
        return session

    def csrf_for(self, cookie: str) -> str:
        return self._csrf(cookie.split(".", 1)[1])

    def logout(self, session: Session) -> None:
        self.store.delete_session(session.member_id, session.token_hash)

    # -- the member ----------------------------------------------------------------------

    def member(self, session: Session) -> Member:
        member = self.store.member(session.member_id)
        if member is None:
            raise NotLoggedIn()
        return member

    def set_reminders(self, session: Session, on: bool) -> None:
        self.store.set_reminders(session.member_id, on, self.issuer_id)

    def change_password(self, session: Session, current: str, new: str) -> None:
        member = self.member(session)
        if not self.passwords.verify(member.password_hash, current):
            raise LoginFailed("現在のパスワードが正しくありません。")
        self._check_password(new, member.email)
        self.store.set_password(member.member_id, self.passwords.hash(new))
        self.store.delete_sessions(member.member_id, keep=session.token_hash)

    def start_reset(self, email_text: str, source: str = "unknown") -> None:
        """Send a code, or to an unknown address a note that nothing is registered with it:
        the same work either way (counted under the same limits, a code stored, one mail
        queued), so neither the answer nor its time tells. The unknown address's code is
        never sent, so its tries, refusals and answers run the same course as a registered
        address's, and no member is found if it is guessed."""
        email = self._email(email_text)
        if self.store.address_registered(self._email_key(email)):
            self._send_code(RESET, email, "にーみんポイント パスワード再設定コード", _reset_code, source)
        else:
            self._send_code(RESET, email, "にーみんポイント パスワード再設定について", _not_registered, source)

    def complete_reset(self, email_text: str, code: str, new_password: str, source: str = "unknown") -> None:
        email = self._email(email_text)
        self._check_password(new_password, email)
        self._check_code(RESET, email, code, source)
        member = self.store.member_by_email(self._email_key(email))
        if member is None:
            raise CodeInvalid()
        self.store.set_password(member.member_id, self.passwords.hash(new_password))
        self.store.delete_sessions(member.member_id)

    def withdraw(self, session: Session, password: str) -> None:
        member = self.member(session)
        if not self.passwords.verify(member.password_hash, password):
            raise LoginFailed("パスワードが正しくありません。")
        self.store.delete_member(member.member_id, self._email_key(member.email), self.issuer_id)

    # -- linked cards -----------------------------------------------------------------------

    def link_card(self, session: Session, card_number: str, birth_date: str) -> str:
        card = self._matching_card(f"member:{session.member_id}", card_number, birth_date)
        if any(link.idm == card.idm for link in self.store.links(session.member_id)):
            raise CardAlreadyLinked()
        link = Link(secrets.token_urlsafe(12), card.idm, domain.mask_card_number(card.card_number), self.clock())
        try:
            self.store.add_link(session.member_id, link)
        except Conflict as exc:
            raise CardAlreadyLinked() from exc  # the same card, linked by a request at the same time
        self._tell_card_members(link, session.member_id)
        return link.link_id

    def unlink_card(self, session: Session, card_id: str) -> None:
        if not self.store.delete_link(session.member_id, card_id):
            raise CardNotLinked()

    def _linked(self, session: Session, card_id: str) -> Link:
        link = self.store.link(session.member_id, card_id)
        if link is None:
            raise CardNotLinked()
        return link

    def cards(self, session: Session) -> list[dict]:
        out = []
        for link in sorted(self.store.links(session.member_id), key=lambda x: x.linked_at):
            view = self.ledger.balance(link.idm)
            soon = _expiring(view.lots, view.day)
            out.append({"card_id": link.link_id, "card_number_masked": link.card_number_masked,
                        "balance": view.balance, "expiring_soon": soon["points"]})
        return out

    def card(self, session: Session, card_id: str) -> dict:
        link = self._linked(session, card_id)
        view = self.ledger.balance(link.idm)
        return {
            "card_id": link.link_id,
            "card_number_masked": link.card_number_masked,
            "balance": view.balance,
            "as_of": view.day.isoformat(),
            "lots": [{"points": lot.remaining, "expires_on": lot.expires_on.isoformat(), "source": lot.source.value}
                     for lot in view.lots],
            "expiring_soon": _expiring(view.lots, view.day),
        }

    def stores(self) -> list[dict]:
        return [{"name": m.name, "area": m.area, "category": m.category}
                for m in sorted(self.merchants(self.issuer_id), key=lambda m: (m.area, m.name))]

    def history(self, session: Session, card_id: str, cursor: str | None, limit: int = 20) -> dict:
        link = self._linked(session, card_id)
        # 1-10 ASCII digits: str.isdigit alone lets '²' and 5,000-digit numbers through to int() and DynamoDB
        if cursor is not None and not (cursor.isascii() and cursor.isdigit() and len(cursor) <= 10):
            raise InvalidInput()
        page = self.ledger.history(link.idm, limit=limit, cursor=cursor)
        names = {m.merchant_id: m.name for m in self.merchants(self.issuer_id)}
        return {
            "entries": [
                {"at": e.at.isoformat(), "day": e.day.isoformat(), "kind": e.kind,
                 "points": domain.net_points(e), "label": domain.entry_label(e, names)}
                for e in page.entries
            ],
            "next_cursor": page.next_cursor,
        }


def _expiring(lots, day: date) -> dict:
    until = day + domain.EXPIRING_SOON
    return {"points": sum(lot.remaining for lot in lots if lot.expires_on <= until), "until": until.isoformat()}


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _signup_code(code: str) -> str:
    return (
        "にーみんポイント マイページへのご登録ありがとうございます。\n\n"
        f"確認コード: {code}\n\n"
        "このコードの有効期限は10分です。画面に入力して登録を続けてください。\n"
        "お心当たりのない場合は、このメールを破棄してください。\n"
    )


def _already_registered(code: str) -> str:
    return (
        "このメールアドレスは、にーみんポイント マイページに登録済みです。\n"
        "ログイン画面からログインしてください。パスワードをお忘れの場合は「パスワードを忘れた方」から再設定できます。\n"
        "お心当たりのない場合は、このメールを破棄してください。\n"
    )


def _not_registered(code: str) -> str:
    return (
        "にーみんポイント マイページのパスワード再設定を受け付けましたが、"
        "このメールアドレスはマイページに登録されていません。\n"
        "別のメールアドレスでご登録の場合は、そのアドレスで再設定してください。\n"
        "お心当たりのない場合は、このメールを破棄してください。\n"
    )


def _reset_code(code: str) -> str:
    return (
        "にーみんポイント マイページのパスワード再設定を受け付けました。\n\n"
        f"確認コード: {code}\n\n"
        "このコードの有効期限は10分です。\n"
        "お心当たりのない場合は、このメールを破棄してください。パスワードは変更されません。\n"
    )
