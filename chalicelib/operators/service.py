"""Operator use cases behind the admin API: the card lifecycle (look up, return,
damage reissue, void), the registry (merchants, terminals, events, rebate rates,
campaigns), admin grant lists and running a scheduled job by hand for one issuer.

Every change names its operator (the IAM principal) as `Actor("operator", <arn>)` and
carries a reason; every card change is one ledger change whose request id comes from
the client, so a repeat with the same id and body returns the original result. What a
card change does beyond the ledger (MyPage links) is safe to repeat, and is redone on a
repeat, so a retry after a failure part way finishes the job.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import date

from ..campaigns.domain import Campaign, Enrolment
from ..campaigns.service import Campaigns
from ..job_progress import JobState
from ..ledger.domain import Actor, Card, CardStatus
from ..ledger.errors import CardAlreadyExists, CardClosed, CardNotFound, InvalidRequest, WrongIssuer
from ..ledger.service import Ledger
from ..mypage.domain import mask_card_number
from ..mypage.members import Members
from ..observability import logger
from ..rebates.domain import RebateRate
from ..reconciliation.service import Reconciliation
from ..terminals.domain import Event, Merchant, Mode, Terminal, TerminalStatus
from ..terminals.service import TerminalService
from . import domain
from .domain import JOBS, ReturnReason
from .errors import OtherIssuersRecord, ReplacementMismatch, TerminalExists, UnknownJob, UnknownRecord
from .grants import GrantListReport, GrantRow, grant_list

# Admin grants one card at a time, for the `admin-grants` import (the same implementation
# as the grant lists below, so both report a row in the same words).
from .grants import Outcome as GrantOutcome  # noqa: F401  (re-exported)
from .grants import grant_once as grant_once


@dataclass(frozen=True)
class Operator:
    """Who calls, and for which issuer: every admin route is scoped to one issuer."""

    arn: str
    issuer: str

    @property
    def actor(self) -> Actor:
        return Actor("operator", self.arn)


class Operators:
    def __init__(
        self,
        ledger: Ledger,
        terminals: TerminalService,
        members: Members,
        campaigns: Campaigns,
        mailer: Callable[[], object],
        *,
        job_state: JobState,
        reconciliation: Reconciliation,
    ) -> None:
        self.ledger = ledger
        self.terminals = terminals
        self.members = members
        self.campaigns = campaigns
        self.mailer = mailer  # built on first use: only the reminders job sends mail
        self.job_state = job_state  # where each job left off (a job run by hand)
        self.reconciliation = reconciliation  # the rebate job run by hand: whether a month's file came

    # -- cards ---------------------------------------------------------------------

    def _card(self, op: Operator, card_number: str) -> Card:
        """The issuer's card with this number. An issuer's cards never change hands, so
        this read is not stale by the time the ledger writes."""
        idm = self.ledger.idm_for_number(card_number)
        if idm is None:
            raise CardNotFound()
        card = self.ledger.card(idm)
        if card.issuer != op.issuer:
            raise WrongIssuer()
        return card

    def card(self, op: Operator, card_number: str, *, history: int = 20) -> dict:
        card = self._card(op, card_number)
        view = self.ledger.balance(card.idm)
        entries = self.ledger.history(card.idm, limit=history).entries
        return domain.card_view(view.card, view.day, view.balance, entries)

    def return_card(self, op: Operator, card_number: str, *, request_id: str, reason: ReturnReason, note: str) -> dict:
        """返却: void every point and close the card as returned, then take the card off
        every member's MyPage."""
        card = self._card(op, card_number)
        result = self.ledger.void(
            card.idm, request_id=domain.ledger_request_id(op.issuer, request_id), actor=op.actor,
            reason=domain.return_reason(reason, note), close_as=CardStatus.RETURNED,
        )
        unlinked = self.members.unlink_card(card.idm)
        self._log("card returned", op, reason=reason.value, voided=result["voided"], unlinked=unlinked)
        return {"card_number": card.card_number, "reason": reason.value, **result}

    def void_card(self, op: Operator, card_number: str, *, request_id: str, note: str, close: bool) -> dict:
        """抹消 by an operator: take every point off the card; with `close`, the card is
        closed as void and taken off every member's MyPage."""
        card = self._card(op, card_number)
        result = self.ledger.void(
            card.idm, request_id=domain.ledger_request_id(op.issuer, request_id), actor=op.actor,
            reason=domain.void_reason(note), close_as=CardStatus.VOID if close else None,
        )
        unlinked = self.members.unlink_card(card.idm) if close else 0
        self._log("card voided", op, voided=result["voided"], closed=close, unlinked=unlinked)
        return {"card_number": card.card_number, **result}

    def reissue(
        self, op: Operator, card_number: str, *, request_id: str, new_card_number: str, new_idm: str, note: str
    ) -> dict:
        """障害再発行: move the broken card's lots, with their own expiry dates, to the
        replacement card in one ledger transaction (which closes the broken card as
        void), then point the members' links at the replacement.

        The replacement is opened first if it is not known yet, with the broken card's
        holder birth date (so a member can link it); a replacement already imported is
        used as it is, its own points kept."""
        old = self._card(op, card_number)
        if new_card_number == old.card_number or new_idm == old.idm:
            raise InvalidRequest("the replacement must be another card")
        known = self.ledger.idm_for_number(new_card_number)
        if known is None:
            if old.status.closed:  # not a repeat (that finds the replacement): refuse before opening it
                raise CardClosed(old.status.value)
            self._open_replacement(op, old, new_card_number, new_idm)
        elif known != new_idm:
            raise ReplacementMismatch()
        result = self.ledger.transfer(
            old.idm, new_idm, request_id=domain.ledger_request_id(op.issuer, request_id), actor=op.actor,
            reason=domain.reissue_reason(note),
        )
        moved = self.members.move_card_links(old.idm, new_idm, mask_card_number(new_card_number))
        self._log("card reissued", op, moved=result["moved"], links_moved=moved)
        return {"card_number": old.card_number, "new_card_number": new_card_number, "closed_as": CardStatus.VOID.value,
                **result}

    def _open_replacement(self, op: Operator, old: Card, card_number: str, idm: str) -> None:
        stored = self.ledger.card_record(old.idm)
        birth_date = stored.birth_date if stored else None
        try:
            self.ledger.open_card(idm=idm, card_number=card_number, issuer_id=op.issuer, birth_date=birth_date)
        except CardAlreadyExists as exc:
            # Opened by a concurrent repeat, or the IDm is another card's.
            if self.ledger.idm_for_number(card_number) != idm:
                raise ReplacementMismatch() from exc

    # -- the issuer's settings ---------------------------------------------------------

    def settings(self, op: Operator) -> dict:
        return domain.plain(self.ledger.issuer(op.issuer))

    def change_settings(self, op: Operator, changes: Mapping[str, object]) -> dict:
        """The settings an operator may change while the programme runs: the points' name,
        the default e-money rebate rate (for payments made from now on), the daily limits
        on recorded e-money per terminal and per card, and the issuer's closure days (the
        business calendar of the rebate's grant day)."""
        if "closures" in changes:
            changes = {**changes, "closures": tuple(sorted(set(changes["closures"])))}
        issuer = self.ledger.change_issuer(op.issuer, **changes)
        self._log("issuer settings changed", op, changed=sorted(changes))
        return domain.plain(issuer)

    # -- registry --------------------------------------------------------------------

    def register_merchant(self, op: Operator, merchant: Merchant) -> dict:
        merchant = replace(merchant, issuer=op.issuer)
        self.terminals.register_merchant(merchant)
        self._log("merchant registered", op, merchant=merchant.merchant_id)
        return _merchant(merchant)

    def merchants(self, op: Operator) -> list[dict]:
        self.ledger.issuer(op.issuer)
        return [_merchant(m) for m in self.terminals.merchants(op.issuer)]

    def register_terminal(self, op: Operator, terminal: Terminal, *, replace_key: bool = False) -> dict:
        """A new terminal, or with `replace_key` a new key for one of the issuer's
        terminals (key rotation: the old key stops working, the terminal is active)."""
        terminal = replace(terminal, issuer=op.issuer, status=TerminalStatus.ACTIVE)
        existing = self.terminals.store.get_terminal(terminal.terminal_id)
        if existing is not None:
            if existing.issuer != op.issuer:
                raise OtherIssuersRecord(f"terminal {terminal.terminal_id}")
            if not replace_key:
                raise TerminalExists(terminal.terminal_id)
        if terminal.mode is Mode.EVENT and terminal.event_id is not None:
            self._own_event(op, terminal.event_id)
        self.terminals.register_terminal(terminal)
        self._log("terminal registered", op, terminal=terminal.terminal_id, key_replaced=existing is not None)
        return {**_terminal(terminal), "key_replaced": existing is not None}

    def set_terminal_status(self, op: Operator, terminal_id: str, status: TerminalStatus) -> dict:
        existing = self.terminals.store.get_terminal(terminal_id)
        if existing is None:
            raise UnknownRecord(f"no terminal {terminal_id}")
        if existing.issuer != op.issuer:
            raise OtherIssuersRecord(f"terminal {terminal_id}")
        terminal = self.terminals.set_terminal_status(terminal_id, status)
        self._log("terminal status", op, terminal=terminal_id, status=status.value)
        return _terminal(terminal)

    def register_event(self, op: Operator, event: Event) -> dict:
        event = replace(event, issuer=op.issuer)
        existing = self.terminals.store.get_event(event.event_id)
        if existing is not None and existing.issuer != op.issuer:
            raise OtherIssuersRecord(f"event {event.event_id}")
        self.terminals.register_event(event)
        self._log("event registered", op, event=event.event_id)
        return _event(event)

    def _own_event(self, op: Operator, event_id: str) -> None:
        event = self.terminals.store.get_event(event_id)
        if event is None:
            raise InvalidRequest(f"no event {event_id} of issuer {op.issuer}")
        if event.issuer != op.issuer:
            raise OtherIssuersRecord(f"event {event_id}")

    def register_rebate_rate(self, op: Operator, rate: RebateRate) -> dict:
        rate = replace(rate, issuer=op.issuer)
        self.terminals.register_rebate_rate(rate)
        self._log("rebate rate registered", op, rate=rate.rate_id, bps=rate.bps)
        return domain.plain(rate)

    def create_campaign(self, op: Operator, campaign: Campaign) -> dict:
        created = self.campaigns.create(replace(campaign, issuer=op.issuer))
        self._log("campaign created", op, campaign=created.campaign_id)
        return domain.plain(created)

    def campaign_list(self, op: Operator) -> list[dict]:
        self.ledger.issuer(op.issuer)
        return [domain.plain(c) for c in self.campaigns.campaigns(op.issuer)]

    def enrol(self, op: Operator, campaign_id: str, card_number: str, enrolled_on: date) -> dict:
        card = self._card(op, card_number)
        enrolment: Enrolment = self.campaigns.enrol(op.issuer, campaign_id, card.idm, enrolled_on)
        self._log("card enrolled", op, campaign=campaign_id)
        return {"campaign_id": campaign_id, "card_number": card.card_number,
                "enrolled_on": enrolment.enrolled_on.isoformat()}

    # -- grants and jobs --------------------------------------------------------------

    def grant_list(self, op: Operator, list_id: str, rows: Iterable[GrantRow], *, reason: str) -> dict:
        """An admin grant list (行政ポイント): exactly once per (list, card), so a list
        sent again, or in parts, grants nobody twice (those cards are counted in
        `already_granted`, as the admin-grants import counts them unchanged). Rejected
        rows are numbered from 1 in the order sent."""
        self.ledger.issuer(op.issuer)
        report: GrantListReport = grant_list(self.ledger, op.issuer, list_id, rows, reason=reason, actor=op.actor)
        self._log("grant list", op, list=list_id, granted=report.granted, points=report.points,
                  already_granted=report.already_granted, rejected=len(report.rejected))
        return {
            "list_id": report.list_id,
            "granted": report.granted,
            "points": report.points,
            "already_granted": report.already_granted,
            "rejected": [{"row": row, "reason": why} for row, why in report.rejected],
        }

    def run_job(self, op: Operator, name: str) -> dict:
        """Run one scheduled job for this issuer as of its today, as the schedule would:
        every job is exactly once and catches up missed days, so this is safe at any time."""
        if name not in JOBS:
            raise UnknownJob(name, JOBS)
        on = self.ledger.today(op.issuer)
        report = self._runner(name)(op.issuer, on)
        self._log("job run", op, job=name)
        return {"job": name, "report": domain.plain(report)}

    def _runner(self, name: str) -> Callable[[str, date], object]:
        # Imported here: a cold start of the admin API loads only the job it runs.
        if name == "expiry":
            from ..jobs.expiry import run_expiry

            return lambda issuer, on: run_expiry(self.ledger, issuer, on=on, state=self.job_state)
        if name == "rebates":
            from ..jobs.rebate import run_rebates

            return lambda issuer, on: run_rebates(self.ledger, self.terminals.rebates, issuer, on=on,
                                                  state=self.job_state, reconciliation=self.reconciliation,
                                                  reconciliation_default=self.terminals.reconciliation_default)
        if name == "campaigns":
            from ..campaigns.service import run_campaigns

            return lambda issuer, on: run_campaigns(self.campaigns, self.terminals, issuer, on=on, state=self.job_state)
        if name == "dormancy":
            from ..jobs.dormancy import run_dormancy

            return lambda issuer, on: run_dormancy(self.ledger, self.members, issuer, on=on, state=self.job_state)
        from ..jobs.reminders import run_reminders

        return lambda issuer, on: run_reminders(self.ledger, self.members, self.mailer(), issuer, on=on,
                                                state=self.job_state)

    @staticmethod
    def _log(action: str, op: Operator, **fields: object) -> None:
        # The operator's ARN and the issuer, never a card number or an IDm.
        logger().info(action, extra={"operator": op.arn, "issuer": op.issuer, **fields})


def _merchant(m: Merchant) -> dict:
    return {"merchant_id": m.merchant_id, "name": m.name, "area": m.area, "category": m.category,
            "rebate_bps": m.rebate_bps}


def _terminal(t: Terminal) -> dict:
    return {"terminal_id": t.terminal_id, "mode": t.mode.value, "status": t.status.value,
            "merchant_id": t.merchant_id, "event_id": t.event_id}


def _event(e: Event) -> dict:
    return {"event_id": e.event_id, "name": e.name, "points": e.points, "opens_at": e.opens_at.isoformat(),
            "closes_at": e.closes_at.isoformat(), "validity_months": e.validity_months}

