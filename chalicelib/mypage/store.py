"""MyPage items in the application table:

    MEMBER#<id>            MEMBER           the member: e-mail, password hash, preferences
    MEMBER#<id>            SESSION#<hash>   a session (its token is only stored hashed; TTL)
    MEMBER#<id>            LINK#<id>        a linked card (its IDm; the card number masked)
    EMAIL#<keyed hash>     EMAIL            the address → member, and its uniqueness
    CODE#<purpose>#<hash>  CODE             a 4-digit code, keyed-hashed, with its tries (TTL)
    SIGNUP#<hash>          SIGNUP           a verified address finishing its signup (TTL)
    THROTTLE#<scope>#<key> THROTTLE         recent events for a rate limit (TTL)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

from pynamodb.attributes import (
    BooleanAttribute,
    NumberAttribute,
    UnicodeAttribute,
    UTCDateTimeAttribute,
    VersionAttribute,
)
from pynamodb.exceptions import DeleteError, PutError, TransactWriteError, UpdateError
from pynamodb.transactions import TransactWrite

from ..table import Table, TableItem, failed_positions
from .domain import Window


class MemberItem(TableItem, discriminator="member"):
    email = UnicodeAttribute()
    email_key = UnicodeAttribute()
    password_hash = UnicodeAttribute()
    expiry_reminders = BooleanAttribute(default=True)
    created_at = UTCDateTimeAttribute()


class EmailItem(TableItem, discriminator="email"):
    member_id = UnicodeAttribute()


class CodeItem(TableItem, discriminator="code"):
    code_hash = UnicodeAttribute()
    tries = NumberAttribute(default=0)


class SignupItem(TableItem, discriminator="signup"):
    email = UnicodeAttribute()


class SessionItem(TableItem, discriminator="session"):
    created_at = UTCDateTimeAttribute()
    last_seen = UTCDateTimeAttribute()


class LinkItem(TableItem, discriminator="link"):
    idm = UnicodeAttribute()
    card_number_masked = UnicodeAttribute()
    linked_at = UTCDateTimeAttribute()


class ThrottleItem(TableItem, discriminator="throttle"):
    times = UnicodeAttribute()  # JSON list of ISO instants
    version = VersionAttribute()


def _member_pk(member_id: str) -> str:
    return f"MEMBER#{member_id}"


@dataclass(frozen=True)
class Member:
    member_id: str
    email: str
    password_hash: str
    expiry_reminders: bool


@dataclass(frozen=True)
class Session:
    member_id: str
    token_hash: str
    created_at: datetime
    last_seen: datetime


@dataclass(frozen=True)
class Link:
    link_id: str
    idm: str
    card_number_masked: str
    linked_at: datetime


@dataclass(frozen=True)
class StoredCode:
    code_hash: str
    tries: int
    expires_at: datetime


class Conflict(Exception):
    """A condition failed: the item exists, or changed, or is gone."""


def _epoch(when: datetime) -> datetime:
    return when.astimezone(UTC)


class MyPageStore:
    def __init__(self, table: Table) -> None:
        self.connection = table.connection

    # -- members ---------------------------------------------------------------------

    def member_by_email(self, email_key: str) -> Member | None:
        try:
            member_id = EmailItem.get(f"EMAIL#{email_key}", "EMAIL", consistent_read=True).member_id
        except EmailItem.DoesNotExist:
            return None
        return self.member(member_id)

    def member(self, member_id: str) -> Member | None:
        try:
            item = MemberItem.get(_member_pk(member_id), "MEMBER", consistent_read=True)
        except MemberItem.DoesNotExist:
            return None
        return Member(member_id, item.email, item.password_hash, item.expiry_reminders)

    def create_member(
        self, member: Member, email_key: str, signup_key: str, first_link: Link, now: datetime
    ) -> None:
        """The member, its address, its first card, and the end of its signup, at once.
        Raises Conflict if the address is taken or the signup was already used."""
        pk = _member_pk(member.member_id)
        try:
            with TransactWrite(connection=self.connection) as tx:
                tx.save(EmailItem(f"EMAIL#{email_key}", "EMAIL", member_id=member.member_id),
                        condition=TableItem.pk.does_not_exist())
                tx.save(MemberItem(pk, "MEMBER", email=member.email, email_key=email_key,
                                   password_hash=member.password_hash, expiry_reminders=member.expiry_reminders,
                                   created_at=now), condition=TableItem.pk.does_not_exist())
                tx.save(self._link_item(member.member_id, first_link))
                tx.delete(SignupItem(f"SIGNUP#{signup_key}", "SIGNUP"), condition=TableItem.pk.exists())
        except TransactWriteError as exc:
            if failed_positions(exc):
                raise Conflict() from exc
            raise

    def set_password(self, member_id: str, password_hash: str) -> None:
        MemberItem(_member_pk(member_id), "MEMBER").update(actions=[MemberItem.password_hash.set(password_hash)])

    def set_reminders(self, member_id: str, on: bool) -> None:
        MemberItem(_member_pk(member_id), "MEMBER").update(actions=[MemberItem.expiry_reminders.set(on)])

    def delete_member(self, member_id: str, email_key: str) -> None:
        """The member with every session and link, and its address (points stay on the cards)."""
        pk = _member_pk(member_id)
        with TableItem.batch_write() as batch:
            for item in TableItem.query(pk):
                batch.delete(item)
            batch.delete(EmailItem(f"EMAIL#{email_key}", "EMAIL"))

    # -- codes and signups -------------------------------------------------------------

    def put_code(self, purpose: str, email_key: str, code_hash: str, expires_at: datetime) -> None:
        """A new code replaces the address's previous one (and its tries)."""
        CodeItem(f"CODE#{purpose}#{email_key}", "CODE", code_hash=code_hash, tries=0,
                 expires_at=_epoch(expires_at)).save()

    def try_code(self, purpose: str, email_key: str, max_tries: int) -> StoredCode | None:
        """Count one more try of the address's code and return it, or None when there is
        none. Raises Conflict when its tries are used up."""
        item = CodeItem(f"CODE#{purpose}#{email_key}", "CODE")
        try:
            item.update(actions=[CodeItem.tries.add(1)],
                        condition=TableItem.pk.exists() & (CodeItem.tries < max_tries))
        except UpdateError as exc:
            if getattr(exc, "cause_response_code", None) != "ConditionalCheckFailedException":
                raise
            try:
                CodeItem.get(item.pk, "CODE", consistent_read=True)
            except CodeItem.DoesNotExist:
                return None
            raise Conflict() from exc
        return StoredCode(item.code_hash, item.tries, item.expires_at)

    def delete_code(self, purpose: str, email_key: str) -> None:
        CodeItem(f"CODE#{purpose}#{email_key}", "CODE").delete()

    def put_signup(self, signup_key: str, email: str, expires_at: datetime) -> None:
        SignupItem(f"SIGNUP#{signup_key}", "SIGNUP", email=email, expires_at=_epoch(expires_at)).save()

    def signup(self, signup_key: str) -> tuple[str, datetime] | None:
        try:
            item = SignupItem.get(f"SIGNUP#{signup_key}", "SIGNUP", consistent_read=True)
        except SignupItem.DoesNotExist:
            return None
        return item.email, item.expires_at

    # -- sessions ------------------------------------------------------------------------

    def put_session(self, session: Session, expires_at: datetime) -> None:
        SessionItem(_member_pk(session.member_id), f"SESSION#{session.token_hash}", created_at=session.created_at,
                    last_seen=session.last_seen, expires_at=_epoch(expires_at)).save()

    def session(self, member_id: str, token_hash: str) -> Session | None:
        try:
            item = SessionItem.get(_member_pk(member_id), f"SESSION#{token_hash}", consistent_read=True)
        except SessionItem.DoesNotExist:
            return None
        return Session(member_id, token_hash, item.created_at, item.last_seen)

    def touch_session(self, session: Session, now: datetime, expires_at: datetime) -> None:
        item = SessionItem(_member_pk(session.member_id), f"SESSION#{session.token_hash}")
        try:
            item.update(actions=[SessionItem.last_seen.set(now), SessionItem.expires_at.set(_epoch(expires_at))],
                        condition=TableItem.pk.exists())
        except UpdateError:
            pass  # logged out meanwhile: the next request finds no session

    def delete_session(self, member_id: str, token_hash: str) -> None:
        try:
            SessionItem(_member_pk(member_id), f"SESSION#{token_hash}").delete()
        except DeleteError:
            pass

    def delete_sessions(self, member_id: str, keep: str | None = None) -> None:
        with TableItem.batch_write() as batch:
            for item in SessionItem.query(_member_pk(member_id), TableItem.sk.startswith("SESSION#")):
                if item.sk != f"SESSION#{keep}":
                    batch.delete(item)

    # -- linked cards ----------------------------------------------------------------------

    @staticmethod
    def _link_item(member_id: str, link: Link) -> LinkItem:
        return LinkItem(_member_pk(member_id), f"LINK#{link.link_id}", idm=link.idm,
                        card_number_masked=link.card_number_masked, linked_at=link.linked_at)

    def add_link(self, member_id: str, link: Link) -> None:
        self._link_item(member_id, link).save(condition=TableItem.pk.does_not_exist())

    def links(self, member_id: str) -> list[Link]:
        return [
            Link(item.sk.removeprefix("LINK#"), item.idm, item.card_number_masked, item.linked_at)
            for item in LinkItem.query(_member_pk(member_id), TableItem.sk.startswith("LINK#"), consistent_read=True)
        ]

    def link(self, member_id: str, link_id: str) -> Link | None:
        try:
            item = LinkItem.get(_member_pk(member_id), f"LINK#{link_id}", consistent_read=True)
        except LinkItem.DoesNotExist:
            return None
        return Link(link_id, item.idm, item.card_number_masked, item.linked_at)

    def delete_link(self, member_id: str, link_id: str) -> bool:
        try:
            LinkItem(_member_pk(member_id), f"LINK#{link_id}").delete(condition=TableItem.pk.exists())
        except DeleteError:
            return False
        return True

    # -- throttles ---------------------------------------------------------------------

    def window(self, scope: str, key: str) -> tuple[Window, int | None]:
        try:
            item = ThrottleItem.get(f"THROTTLE#{scope}#{key}", "THROTTLE", consistent_read=True)
        except ThrottleItem.DoesNotExist:
            return Window(()), None
        return Window(tuple(datetime.fromisoformat(t) for t in json.loads(item.times))), item.version

    def save_window(self, scope: str, key: str, window: Window, version: int | None, expires_at: datetime) -> None:
        """Raises Conflict if another request changed the window meanwhile."""
        item = ThrottleItem(f"THROTTLE#{scope}#{key}", "THROTTLE",
                            times=json.dumps([t.isoformat() for t in window.times]), expires_at=_epoch(expires_at))
        if version is not None:
            item.version = version
        try:
            item.save()
        except PutError as exc:
            if getattr(exc, "cause_response_code", None) == "ConditionalCheckFailedException":
                raise Conflict() from exc
            raise
