"""What other contexts need of MyPage: its members and their links to cards. The
reminders job lists the members who asked for reminders and reads each with her links;
the dormancy job and the operators' card changes (return, void, damage reissue) remove
or move every member's link to a card.

`Members` is built on the store alone, without MyPage's session key: the jobs' roles may
not read the stage secret (see `services.members()`). It returns MyPage's own
dataclasses (`Member`, `Link`, from `domain.py`), never the store's items."""

from __future__ import annotations

from collections.abc import Iterator

from .domain import Link, Member
from .store import MyPageStore


class Members:
    def __init__(self, store: MyPageStore) -> None:
        self.store = store

    def remindees(self, issuer_id: str) -> Iterator[str]:
        """The ids of the issuer's members with reminders on (the listing may lag a change)."""
        return self.store.remindees(issuer_id)

    def member_and_links(self, member_id: str) -> tuple[Member | None, list[Link]]:
        """The member (None when withdrawn) and her linked cards, in one read."""
        return self.store.member_and_links(member_id)

    def unlink_card(self, idm: str) -> int:
        """Remove every member's link to the card; returns how many there were. Safe to repeat."""
        return self.store.unlink_card(idm)

    def move_card_links(self, from_idm: str, to_idm: str, card_number_masked: str) -> int:
        """Point every member's link to card `from_idm` at card `to_idm` (a damage reissue),
        keeping each link's id and date; returns how many links there were. Safe to repeat."""
        return self.store.move_card_links(from_idm, to_idm, card_number_masked)
