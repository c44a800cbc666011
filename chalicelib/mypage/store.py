"""MyPage items in the application table:

    MEMBER#<id>            MEMBER           the member: e-mail, password hash, preferences
    MEMBER#<id>            SESSION#<hash>   a session (its token is only stored hashed; TTL)
    MEMBER#<id>            LINK#<id>        a linked card (its IDm; the card number masked)
    EMAIL#<keyed hash>     EMAIL            the address → member, and its uniqueness
    CODE#<purpose>#<hash>  CODE             a 4-digit code, keyed-hashed, with its tries (TTL)
    SIGNUP#<hash>          SIGNUP           a verified address finishing its signup (TTL)
    THROTTLE#<scope>#<key> THROTTLE         recent events for a rate limit (TTL)
    COUNT#<scope>#<key>    COUNT            a counter for a limit over a fixed period (TTL)
    LOGIN#<keyed hash>     LOGIN            an (address, source) pair's login failures (TTL)
    LINKED#<idm>           MEMBER#<id>      a member's link to the card, found from the card
    REMINDEES#<issuer>#<shard>  MEMBER#<id> a member who wants expiry reminders

Counter and login keys are keyed hashes (of an address, a card number or a source
address, never the value) followed by the period they count, e.g. `#2022-10-24`.
Every key string is built and parsed in chalicelib/mypage/keys.py.

A link is written as its pair (LINK# under the member, LINKED# under the card) in one
transaction, so the dormancy job finds a card's members without a scan, and one member
cannot link the same card twice. The REMINDEES partitions list exactly the members with
reminders on (kept with the member item, in the same transactions), spread over
16 shards, so the reminder job reads the members who asked and nobody else.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
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
from . import keys
from .domain import Link, Member, Window


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


class CardLinkItem(TableItem, discriminator="card_link"):
    link_id = UnicodeAttribute()


class RemindeeItem(TableItem, discriminator="remindee"):
    pass


class CounterItem(TableItem, discriminator="counter"):
    count = NumberAttribute(default=0)


class LoginItem(TableItem, discriminator="login"):
    failures = NumberAttribute()
    wait_until = UTCDateTimeAttribute()


class ThrottleItem(TableItem, discriminator="throttle"):
    times = UnicodeAttribute()  # JSON list of ISO instants
    version = VersionAttribute()


@dataclass(frozen=True)
class Session:
    member_id: str
    token_hash: str
    created_at: datetime
    last_seen: datetime


@dataclass(frozen=True)
class StoredCode:
    code_hash: str
    tries: int
    expires_at: datetime


@dataclass(frozen=True)
class LoginFailures:
    failures: int
    wait_until: datetime
    expires_at: datetime  # past it, the failures no longer count (TTL removes the item later)


class Conflict(Exception):
    """A condition failed: the item exists, or changed, or is gone."""


def _link_from_item(item: LinkItem) -> Link:
    return Link(keys.parse_link(item.sk), item.idm, item.card_number_masked, item.linked_at)


def _epoch(when: datetime) -> datetime:
    return when.astimezone(UTC)


class MyPageStore:
    def __init__(self, table: Table) -> None:
        self.connection = table.connection

    # -- members ---------------------------------------------------------------------

    def member_by_email(self, email_key: str) -> Member | None:
        try:
            member_id = EmailItem.get(*keys.email(email_key), consistent_read=True).member_id
        except EmailItem.DoesNotExist:
            return None
        return self.member(member_id)

    def address_registered(self, email_key: str) -> bool:
        """One read whatever the answer (member_by_email reads the member too when it is
        found): what signup and reset start need, at the same cost for every address."""
        try:
            EmailItem.get(*keys.email(email_key), consistent_read=True)
        except EmailItem.DoesNotExist:
            return False
        return True

    def member(self, member_id: str) -> Member | None:
        try:
            item = MemberItem.get(*keys.member(member_id), consistent_read=True)
        except MemberItem.DoesNotExist:
            return None
        return Member(member_id, item.email, item.password_hash, item.expiry_reminders)

    def create_member(
        self, member: Member, email_key: str, signup_key: str, first_link: Link, now: datetime, issuer_id: str
    ) -> None:
        """The member, its address, its first card, and the end of its signup, at once.
        Raises Conflict if the address is taken or the signup was already used."""
        try:
            with TransactWrite(connection=self.connection) as tx:
                tx.save(EmailItem(*keys.email(email_key), member_id=member.member_id),
                        condition=TableItem.pk.does_not_exist())
                tx.save(MemberItem(*keys.member(member.member_id), email=member.email, email_key=email_key,
                                   password_hash=member.password_hash, expiry_reminders=member.expiry_reminders,
                                   created_at=now), condition=TableItem.pk.does_not_exist())
                for item in self._link_items(member.member_id, first_link):
                    tx.save(item)
                if member.expiry_reminders:
                    tx.save(RemindeeItem(*keys.remindee(issuer_id, member.member_id)))
                tx.delete(SignupItem(*keys.signup(signup_key)), condition=TableItem.pk.exists())
        except TransactWriteError as exc:
            if failed_positions(exc):
                raise Conflict() from exc
            raise

    def set_password(self, member_id: str, password_hash: str) -> None:
        MemberItem(*keys.member(member_id)).update(actions=[MemberItem.password_hash.set(password_hash)])

    def set_reminders(self, member_id: str, on: bool, issuer_id: str) -> None:
        """The preference and the member's place in the reminder listing, together."""
        listed = RemindeeItem(*keys.remindee(issuer_id, member_id))
        with TransactWrite(connection=self.connection) as tx:
            tx.update(MemberItem(*keys.member(member_id)), actions=[MemberItem.expiry_reminders.set(on)],
                      condition=TableItem.pk.exists())
            if on:
                tx.save(listed)
            else:
                tx.delete(listed)

    def delete_member(self, member_id: str, email_key: str, issuer_id: str) -> None:
        """The member with every session and link, its address and its place in the
        reminder listing (points stay on the cards)."""
        with TableItem.batch_write() as batch:
            for item in TableItem.query(keys.member_pk(member_id)):
                batch.delete(item)
                if isinstance(item, LinkItem):
                    batch.delete(CardLinkItem(*keys.card_link(item.idm, member_id)))
            batch.delete(EmailItem(*keys.email(email_key)))
            batch.delete(RemindeeItem(*keys.remindee(issuer_id, member_id)))

    def remindees(self, issuer_id: str) -> Iterator[str]:
        """The ids of the issuer's members with reminders on: one query per shard."""
        for partition in keys.remindee_shards(issuer_id):
            for item in RemindeeItem.query(partition):
                yield keys.parse_member(item.sk)

    def member_and_links(self, member_id: str) -> tuple[Member | None, list[Link]]:
        """The member and its linked cards in one query: LINK#… sorts just before MEMBER,
        and the sessions (SESSION#…) after it, so they are not read."""
        member, links = None, []
        for item in TableItem.query(keys.member_pk(member_id), TableItem.sk.between(keys.LINK, keys.MEMBER_SK),
                                    consistent_read=True):
            if isinstance(item, MemberItem):
                member = Member(member_id, item.email, item.password_hash, item.expiry_reminders)
            elif isinstance(item, LinkItem):
                links.append(_link_from_item(item))
        return member, links

    # -- codes and signups -------------------------------------------------------------

    def put_code(self, purpose: str, email_key: str, code_hash: str, expires_at: datetime) -> None:
        """A new code replaces the address's previous one (and its tries)."""
        CodeItem(*keys.code(purpose, email_key), code_hash=code_hash, tries=0,
                 expires_at=_epoch(expires_at)).save()

    def try_code(self, purpose: str, email_key: str, max_tries: int) -> StoredCode | None:
        """Count one more try of the address's code and return it, or None when there is
        none. Raises Conflict when its tries are used up."""
        item = CodeItem(*keys.code(purpose, email_key))
        try:
            item.update(actions=[CodeItem.tries.add(1)],
                        condition=TableItem.pk.exists() & (CodeItem.tries < max_tries))
        except UpdateError as exc:
            if getattr(exc, "cause_response_code", None) != "ConditionalCheckFailedException":
                raise
            try:
                CodeItem.get(*keys.code(purpose, email_key), consistent_read=True)
            except CodeItem.DoesNotExist:
                return None
            raise Conflict() from exc
        return StoredCode(item.code_hash, item.tries, item.expires_at)

    def delete_code(self, purpose: str, email_key: str) -> None:
        CodeItem(*keys.code(purpose, email_key)).delete()

    def put_signup(self, signup_key: str, email: str, expires_at: datetime) -> None:
        SignupItem(*keys.signup(signup_key), email=email, expires_at=_epoch(expires_at)).save()

    def signup(self, signup_key: str) -> tuple[str, datetime] | None:
        try:
            item = SignupItem.get(*keys.signup(signup_key), consistent_read=True)
        except SignupItem.DoesNotExist:
            return None
        return item.email, item.expires_at

    # -- sessions ------------------------------------------------------------------------

    def put_session(self, session: Session, expires_at: datetime) -> None:
        SessionItem(*keys.session(session.member_id, session.token_hash), created_at=session.created_at,
                    last_seen=session.last_seen, expires_at=_epoch(expires_at)).save()

    def session(self, member_id: str, token_hash: str) -> Session | None:
        try:
            item = SessionItem.get(*keys.session(member_id, token_hash), consistent_read=True)
        except SessionItem.DoesNotExist:
            return None
        return Session(member_id, token_hash, item.created_at, item.last_seen)

    def touch_session(self, session: Session, now: datetime, expires_at: datetime) -> None:
        item = SessionItem(*keys.session(session.member_id, session.token_hash))
        try:
            item.update(actions=[SessionItem.last_seen.set(now), SessionItem.expires_at.set(_epoch(expires_at))],
                        condition=TableItem.pk.exists())
        except UpdateError:
            pass  # logged out meanwhile: the next request finds no session

    def delete_session(self, member_id: str, token_hash: str) -> None:
        try:
            SessionItem(*keys.session(member_id, token_hash)).delete()
        except DeleteError:
            pass

    def delete_sessions(self, member_id: str, keep: str | None = None) -> None:
        keep_sk = None if keep is None else keys.session(member_id, keep)[1]
        with TableItem.batch_write() as batch:
            for item in SessionItem.query(keys.member_pk(member_id), TableItem.sk.startswith(keys.SESSION)):
                if item.sk != keep_sk:
                    batch.delete(item)

    # -- linked cards ----------------------------------------------------------------------

    @staticmethod
    def _link_items(member_id: str, link: Link) -> tuple[LinkItem, CardLinkItem]:
        return (
            LinkItem(*keys.link(member_id, link.link_id), idm=link.idm,
                     card_number_masked=link.card_number_masked, linked_at=link.linked_at),
            CardLinkItem(*keys.card_link(link.idm, member_id), link_id=link.link_id),
        )

    def add_link(self, member_id: str, link: Link) -> None:
        """Raises Conflict if the member has already linked the card."""
        try:
            with TransactWrite(connection=self.connection) as tx:
                for item in self._link_items(member_id, link):
                    tx.save(item, condition=TableItem.pk.does_not_exist())
        except TransactWriteError as exc:
            if failed_positions(exc):
                raise Conflict() from exc
            raise

    def links(self, member_id: str) -> list[Link]:
        return [
            _link_from_item(item)
            for item in LinkItem.query(keys.member_pk(member_id), TableItem.sk.startswith(keys.LINK),
                                       consistent_read=True)
        ]

    def link(self, member_id: str, link_id: str) -> Link | None:
        try:
            item = LinkItem.get(*keys.link(member_id, link_id), consistent_read=True)
        except LinkItem.DoesNotExist:
            return None
        return _link_from_item(item)

    def delete_link(self, member_id: str, link_id: str) -> bool:
        link = self.link(member_id, link_id)
        if link is None:
            return False
        try:
            with TransactWrite(connection=self.connection) as tx:
                tx.delete(LinkItem(*keys.link(member_id, link_id)), condition=TableItem.pk.exists())
                tx.delete(CardLinkItem(*keys.card_link(link.idm, member_id)))
        except TransactWriteError as exc:
            if failed_positions(exc):
                return False  # unlinked meanwhile
            raise
        return True

    def card_members(self, idm: str) -> list[str]:
        """The ids of the members who have linked the card."""
        return [keys.parse_member(pair.sk)
                for pair in CardLinkItem.query(keys.card_links(idm), consistent_read=True)]

    def unlink_card(self, idm: str) -> int:
        """Remove every member's link to the card; returns how many there were. Safe to
        repeat: a pair already gone is deleted again without effect."""
        pairs = list(CardLinkItem.query(keys.card_links(idm), consistent_read=True))
        for pair in pairs:
            member_id = keys.parse_member(pair.sk)
            with TransactWrite(connection=self.connection) as tx:
                tx.delete(LinkItem(*keys.link(member_id, pair.link_id)))
                tx.delete(pair)
        return len(pairs)

    def move_card_links(self, from_idm: str, to_idm: str, card_number_masked: str) -> int:
        """Point every member's link to card `from_idm` at card `to_idm` (a damage
        reissue), keeping each link's id and date, so members see the replacement card
        where they saw the broken one. A member who already linked the replacement just
        loses the old link. Returns how many links there were; safe to repeat."""
        pairs = list(CardLinkItem.query(keys.card_links(from_idm), consistent_read=True))
        for pair in pairs:
            member_id = keys.parse_member(pair.sk)
            link_key = keys.link(member_id, pair.link_id)
            try:
                linked_at = LinkItem.get(*link_key, consistent_read=True).linked_at
                with TransactWrite(connection=self.connection) as tx:
                    tx.save(LinkItem(*link_key, idm=to_idm, card_number_masked=card_number_masked,
                                     linked_at=linked_at), condition=TableItem.pk.exists())
                    tx.save(CardLinkItem(*keys.card_link(to_idm, member_id), link_id=pair.link_id),
                            condition=TableItem.pk.does_not_exist())
                    tx.delete(pair)
                continue
            except LinkItem.DoesNotExist:
                pass  # the member unlinked it meanwhile
            except TransactWriteError as exc:
                if not failed_positions(exc):
                    raise
            with TransactWrite(connection=self.connection) as tx:
                tx.delete(LinkItem(*link_key))
                tx.delete(pair)
        return len(pairs)

    # -- throttles ---------------------------------------------------------------------

    def window(self, scope: str, key: str) -> tuple[Window, int | None]:
        try:
            item = ThrottleItem.get(*keys.throttle(scope, key), consistent_read=True)
        except ThrottleItem.DoesNotExist:
            return Window(()), None
        return Window(tuple(datetime.fromisoformat(t) for t in json.loads(item.times))), item.version

    def save_window(self, scope: str, key: str, window: Window, version: int | None, expires_at: datetime) -> None:
        """Raises Conflict if another request changed the window meanwhile."""
        item = ThrottleItem(*keys.throttle(scope, key),
                            times=json.dumps([t.isoformat() for t in window.times]), expires_at=_epoch(expires_at))
        if version is not None:
            item.version = version
        try:
            item.save()
        except PutError as exc:
            if getattr(exc, "cause_response_code", None) == "ConditionalCheckFailedException":
                raise Conflict() from exc
            raise

    # -- counters over fixed periods (one conditional update each) ------------------------

    def count(self, scope: str, key: str) -> int:
        try:
            return int(CounterItem.get(*keys.counter(scope, key), consistent_read=True).count)
        except CounterItem.DoesNotExist:
            return 0

    def take(self, scope: str, key: str, limit: int, expires_at: datetime) -> int | None:
        """Add one to the counter while it is below `limit`, and return the new count; None
        (and nothing written) when it has reached the limit. One conditional update, so
        requests at the same time cannot all pass a limit they each read as not reached."""
        item = CounterItem(*keys.counter(scope, key))
        try:
            item.update(actions=[CounterItem.count.add(1), CounterItem.expires_at.set(_epoch(expires_at))],
                        condition=CounterItem.count.does_not_exist() | (CounterItem.count < limit))
        except UpdateError as exc:
            if getattr(exc, "cause_response_code", None) == "ConditionalCheckFailedException":
                return None
            raise
        return int(item.count)

    def give_back(self, scope: str, key: str) -> None:
        """Undo a `take` (the attempt it counted turned out not to count)."""
        try:
            CounterItem(*keys.counter(scope, key)).update(
                actions=[CounterItem.count.add(-1)], condition=CounterItem.count > 0)
        except UpdateError as exc:
            if getattr(exc, "cause_response_code", None) != "ConditionalCheckFailedException":
                raise

    # -- login failures per (address, source) ---------------------------------------------

    def login_failures(self, key: str) -> LoginFailures | None:
        try:
            item = LoginItem.get(*keys.login(key), consistent_read=True)
        except LoginItem.DoesNotExist:
            return None
        return LoginFailures(int(item.failures), item.wait_until, item.expires_at)

    def count_login_failure(
        self, key: str, seen: int | None, failures: int, wait_until: datetime, expires_at: datetime
    ) -> None:
        """Write `failures` over the `seen` ones read (None: no item), before the password
        is checked. Raises Conflict if another attempt counted meanwhile."""
        item = LoginItem(*keys.login(key), failures=failures, wait_until=wait_until,
                         expires_at=_epoch(expires_at))
        condition = TableItem.pk.does_not_exist() if seen is None else (LoginItem.failures == seen)
        try:
            item.save(condition=condition)
        except PutError as exc:
            if getattr(exc, "cause_response_code", None) == "ConditionalCheckFailedException":
                raise Conflict() from exc
            raise

    def clear_login_failures(self, key: str) -> None:
        LoginItem(*keys.login(key)).delete()
