"""An in-memory `MyPageStore` (chalicelib/mypage/store.py) for MyPage's rule tests.

Members with their address, sessions and links (each link with its pair under the card),
codes with their tries, signups, sliding windows under a version, counters over fixed
periods and login failures, in dicts. What DynamoDB's conditions refuse, the fake refuses
with the same outcome (Conflict, None, False), all or nothing. Instants come back as the
real store's attributes give them: in UTC, and an `expires_at` (a TTL attribute) to the
whole second. Like DynamoDB on moto, nothing expires by itself: the service judges
`expires_at`. tests/contract/test_mypage_store.py holds the cases both stores pass.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from chalicelib.mypage import keys
from chalicelib.mypage.domain import Link, Member, Window
from chalicelib.mypage.store import Conflict, LoginFailures, Session, StoredCode


def _utc(when: datetime) -> datetime:
    return when.astimezone(UTC)


def _ttl(when: datetime) -> datetime:
    """A TTL attribute keeps whole seconds since the epoch."""
    return datetime.fromtimestamp(int(when.timestamp()), UTC)


@dataclass
class _Code:
    code_hash: str
    tries: int
    expires_at: datetime


class FakeMyPageStore:
    def __init__(self) -> None:
        self.members: dict[str, Member] = {}
        self.emails: dict[str, str] = {}  # email key → member id
        self.sessions: dict[tuple[str, str], tuple[Session, datetime]] = {}  # (member, token hash) → session, TTL
        self.member_links: dict[tuple[str, str], Link] = {}  # (member, link id) → link
        self.card_links: dict[tuple[str, str], str] = {}  # (IDm, member) → link id
        self.reminded: dict[str, set[str]] = {}  # issuer → members with reminders on
        self.codes: dict[tuple[str, str], _Code] = {}
        self.signups: dict[str, tuple[str, datetime]] = {}
        self.windows: dict[tuple[str, str], tuple[Window, int]] = {}
        self.counters: dict[tuple[str, str], int] = {}
        self.logins: dict[str, LoginFailures] = {}

    # -- members ---------------------------------------------------------------------

    def member_by_email(self, email_key: str) -> Member | None:
        member_id = self.emails.get(email_key)
        return None if member_id is None else self.member(member_id)

    def address_registered(self, email_key: str) -> bool:
        return email_key in self.emails

    def member(self, member_id: str) -> Member | None:
        return self.members.get(member_id)

    def create_member(
        self, member: Member, email_key: str, signup_key: str, first_link: Link, now: datetime, issuer_id: str
    ) -> None:
        if email_key in self.emails or member.member_id in self.members or signup_key not in self.signups:
            raise Conflict()
        self.emails[email_key] = member.member_id
        self.members[member.member_id] = member
        self._put_link(member.member_id, first_link)
        if member.expiry_reminders:
            self.reminded.setdefault(issuer_id, set()).add(member.member_id)
        del self.signups[signup_key]

    def set_password(self, member_id: str, password_hash: str) -> None:
        if member_id in self.members:
            self.members[member_id] = replace(self.members[member_id], password_hash=password_hash)

    def set_reminders(self, member_id: str, on: bool, issuer_id: str) -> None:
        if member_id not in self.members:
            raise Conflict()  # the real store's transaction fails on its condition and writes nothing
        self.members[member_id] = replace(self.members[member_id], expiry_reminders=on)
        listed = self.reminded.setdefault(issuer_id, set())
        if on:
            listed.add(member_id)
        else:
            listed.discard(member_id)

    def delete_member(self, member_id: str, email_key: str, issuer_id: str) -> None:
        self.members.pop(member_id, None)
        for key in [k for k in self.sessions if k[0] == member_id]:
            del self.sessions[key]
        for key, link in list(self.member_links.items()):
            if key[0] == member_id:
                del self.member_links[key]
                self.card_links.pop((link.idm, member_id), None)
        self.emails.pop(email_key, None)
        self.reminded.get(issuer_id, set()).discard(member_id)

    def remindees(self, issuer_id: str) -> Iterator[str]:
        listed = [keys.remindee(issuer_id, m) for m in self.reminded.get(issuer_id, ())]
        for _, sk in sorted(listed):
            yield keys.parse_member(sk)

    def member_and_links(self, member_id: str) -> tuple[Member | None, list[Link]]:
        return self.member(member_id), self.links(member_id)

    # -- codes and signups -------------------------------------------------------------

    def put_code(self, purpose: str, email_key: str, code_hash: str, expires_at: datetime) -> None:
        self.codes[(purpose, email_key)] = _Code(code_hash, 0, _ttl(expires_at))

    def try_code(self, purpose: str, email_key: str, max_tries: int) -> StoredCode | None:
        code = self.codes.get((purpose, email_key))
        if code is None:
            return None
        if code.tries >= max_tries:
            raise Conflict()
        code.tries += 1
        return StoredCode(code.code_hash, code.tries, code.expires_at)

    def delete_code(self, purpose: str, email_key: str) -> None:
        self.codes.pop((purpose, email_key), None)

    def put_signup(self, signup_key: str, email: str, expires_at: datetime) -> None:
        self.signups[signup_key] = (email, _ttl(expires_at))

    def signup(self, signup_key: str) -> tuple[str, datetime] | None:
        return self.signups.get(signup_key)

    # -- sessions ------------------------------------------------------------------------

    def put_session(self, session: Session, expires_at: datetime) -> None:
        stored = replace(session, created_at=_utc(session.created_at), last_seen=_utc(session.last_seen))
        self.sessions[(session.member_id, session.token_hash)] = (stored, _ttl(expires_at))

    def session(self, member_id: str, token_hash: str) -> Session | None:
        found = self.sessions.get((member_id, token_hash))
        return None if found is None else found[0]

    def touch_session(self, session: Session, now: datetime, expires_at: datetime) -> None:
        key = (session.member_id, session.token_hash)
        if key in self.sessions:  # logged out meanwhile: the next request finds no session
            self.sessions[key] = (replace(self.sessions[key][0], last_seen=_utc(now)), _ttl(expires_at))

    def delete_session(self, member_id: str, token_hash: str) -> None:
        self.sessions.pop((member_id, token_hash), None)

    def delete_sessions(self, member_id: str, keep: str | None = None) -> None:
        for key in [k for k in self.sessions if k[0] == member_id and k[1] != keep]:
            del self.sessions[key]

    # -- linked cards ----------------------------------------------------------------------

    def _put_link(self, member_id: str, link: Link) -> None:
        self.member_links[(member_id, link.link_id)] = replace(link, linked_at=_utc(link.linked_at))
        self.card_links[(link.idm, member_id)] = link.link_id

    def add_link(self, member_id: str, link: Link) -> None:
        if (member_id, link.link_id) in self.member_links or (link.idm, member_id) in self.card_links:
            raise Conflict()
        self._put_link(member_id, link)

    def links(self, member_id: str) -> list[Link]:
        return [link for (m, lid), link in sorted(self.member_links.items()) if m == member_id]

    def link(self, member_id: str, link_id: str) -> Link | None:
        return self.member_links.get((member_id, link_id))

    def delete_link(self, member_id: str, link_id: str) -> bool:
        link = self.member_links.pop((member_id, link_id), None)
        if link is None:
            return False
        self.card_links.pop((link.idm, member_id), None)
        return True

    def _pairs(self, idm: str) -> list[tuple[str, str]]:
        """(member id, link id) of the card's pairs, in the real query's order."""
        return sorted(((m, lid) for (i, m), lid in self.card_links.items() if i == idm),
                      key=lambda pair: keys.member_pk(pair[0]))

    def card_members(self, idm: str) -> list[str]:
        return [member_id for member_id, _ in self._pairs(idm)]

    def unlink_card(self, idm: str) -> int:
        pairs = self._pairs(idm)
        for member_id, link_id in pairs:
            self.member_links.pop((member_id, link_id), None)
            del self.card_links[(idm, member_id)]
        return len(pairs)

    def move_card_links(self, from_idm: str, to_idm: str, card_number_masked: str) -> int:
        pairs = self._pairs(from_idm)
        for member_id, link_id in pairs:
            link = self.member_links.get((member_id, link_id))
            if link is not None and (to_idm, member_id) not in self.card_links:
                self.member_links[(member_id, link_id)] = replace(link, idm=to_idm,
                                                                  card_number_masked=card_number_masked)
                self.card_links[(to_idm, member_id)] = link_id
            else:  # unlinked meanwhile, or the member already linked the replacement
                self.member_links.pop((member_id, link_id), None)
            del self.card_links[(from_idm, member_id)]
        return len(pairs)

    # -- throttles ---------------------------------------------------------------------

    def window(self, scope: str, key: str) -> tuple[Window, int | None]:
        found = self.windows.get((scope, key))
        return (Window(()), None) if found is None else found

    def save_window(self, scope: str, key: str, window: Window, version: int | None, expires_at: datetime) -> None:
        found = self.windows.get((scope, key))
        if (found[1] if found else None) != version:
            raise Conflict()
        times = tuple(datetime.fromisoformat(t.isoformat()) for t in window.times)
        self.windows[(scope, key)] = (Window(times), (version or 0) + 1)

    # -- counters over fixed periods -------------------------------------------------------

    def count(self, scope: str, key: str) -> int:
        return self.counters.get((scope, key), 0)

    def take(self, scope: str, key: str, limit: int, expires_at: datetime) -> int | None:
        now = self.counters.get((scope, key))
        if now is not None and now >= limit:
            return None
        self.counters[(scope, key)] = (now or 0) + 1
        return self.counters[(scope, key)]

    def give_back(self, scope: str, key: str) -> None:
        if self.counters.get((scope, key), 0) > 0:
            self.counters[(scope, key)] -= 1

    # -- login failures per (address, source) ---------------------------------------------

    def login_failures(self, key: str) -> LoginFailures | None:
        return self.logins.get(key)

    def count_login_failure(
        self, key: str, seen: int | None, failures: int, wait_until: datetime, expires_at: datetime
    ) -> None:
        found = self.logins.get(key)
        if (found.failures if found else None) != seen:
            raise Conflict()
        self.logins[key] = LoginFailures(failures, _utc(wait_until), _ttl(expires_at))

    def clear_login_failures(self, key: str) -> None:
        self.logins.pop(key, None)
