"""Charge-reward campaign use cases (§6.5): create, list and extend campaigns, enrol
cards, and the daily job that grants what the campaigns earn.

The job, for each campaign of an issuer, walks the days since it last ran (a missed day
is caught up) and on each day that reads charges (domain.sweeps) lists the cards that
charged in the months due, keeps those enrolled and not yet granted, reads each one's
charges in the campaign's months (its card-month briefs, one query: never its whole
TXN history) and grants what is due on or before the run day.

Exactly once and resumable: a card's grant has the request id
`campaign:<issuer>:<campaign>:<idm>` and puts the card's GRANTED# mark in the same
transaction, under attribute_not_exists. A re-run or a resumed run skips the marked
cards; a second run at the same time is answered from the ledger's request record (or
refused by the mark). The last day swept is kept per issuer and campaign
(JOB#campaign.<id>#<issuer>) and only moves forward.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta

from ..errors import ChiikiError
from ..job_progress import JobInterrupted, JobState
from ..ledger.domain import Actor, Issuer, Source
from ..ledger.errors import CardClosed, IdempotencyConflict, WrongIssuer
from ..ledger.service import Ledger
from ..observability import logger
from ..table import Claim
from ..terminals.domain import MonthCharge
from ..terminals.service import RECORD_MAX_AGE, TerminalService
from . import domain, keys
from .domain import Campaign, Charge, Enrolment, Sweep
from .errors import AlreadyEnrolled, AlreadyGranted, CannotExtend, EnrolmentClosed, InvalidCampaign, UnknownCampaign
from .store import CampaignStore

ACTOR = Actor("job", "campaign")
# A terminal may record a charge this many days after it was made: a month's charging
# cards are read once more after that, so a late record still earns its grant.
LATE_DAYS = RECORD_MAX_AGE.days


def request_id(issuer_id: str, campaign_id: str, idm: str) -> str:
    return f"campaign:{issuer_id}:{campaign_id}:{idm}"


def job_name(campaign_id: str) -> str:
    return f"campaign.{campaign_id}"


class Campaigns:
    def __init__(self, ledger: Ledger, store: CampaignStore) -> None:
        self.ledger = ledger
        self.store = store

    def create(self, campaign: Campaign) -> Campaign:
        self.ledger.issuer(campaign.issuer)
        problems = campaign.problems()
        if problems:
            raise InvalidCampaign(problems)
        self.store.add_campaign(campaign)
        return campaign

    def campaign(self, issuer_id: str, campaign_id: str) -> Campaign:
        found = self.store.get_campaign(issuer_id, campaign_id)
        if found is None:
            raise UnknownCampaign(campaign_id)
        return found

    def campaigns(self, issuer_id: str) -> list[Campaign]:
        return sorted(self.store.campaigns(issuer_id), key=lambda c: (c.starts_on, c.campaign_id))

    def extend(self, issuer_id: str, campaign_id: str, ends_on: date) -> Campaign:
        """Move the end later, as seeds 001/002 extend MyNumber Point phase 2 to 2023-05-31
        and then 2023-09-30. Only before the settlement day: cards settled at the old end
        have had their one grant."""
        campaign = self.campaign(issuer_id, campaign_id)
        if ends_on <= campaign.ends_on:
            raise CannotExtend("a campaign can only be extended to a later end")
        if self.ledger.today(issuer_id) >= campaign.settles_on:
            raise CannotExtend("the campaign is already being settled")
        if not self.store.move_end(campaign, ends_on):
            raise CannotExtend("the campaign changed meanwhile; read it again")
        return replace(campaign, ends_on=ends_on)

    def enrol(self, issuer_id: str, campaign_id: str, idm: str, enrolled_on: date) -> Enrolment:
        """Enrol a card from `enrolled_on`: its charges from that day on count. Enrolling
        again on the same day changes nothing; on another day it is refused."""
        campaign = self.campaign(issuer_id, campaign_id)
        card = self.ledger.card(idm)
        if card.issuer != issuer_id:
            raise WrongIssuer()
        if card.status.closed:
            raise CardClosed(card.status.value)
        if enrolled_on > campaign.ends_on:
            raise EnrolmentClosed()
        before = self.store.add_enrolment(issuer_id, campaign_id, Enrolment(idm, enrolled_on))
        if before is not None and before != enrolled_on:
            raise AlreadyEnrolled()
        return Enrolment(idm, enrolled_on)

    def enrolments(self, issuer_id: str, campaign_id: str) -> list[Enrolment]:
        self.campaign(issuer_id, campaign_id)
        return self.store.enrolments(issuer_id, campaign_id)


# --- the daily job ----------------------------------------------------------------------


@dataclass
class CampaignReport:
    """What a run did for one campaign. `granted` counts the grants this run's requests
    made or were answered with (two runs at once may both count one grant)."""

    campaign_id: str
    days: list[date] = field(default_factory=list)  # the days swept, all finished
    cards: int = 0  # enrolled, not yet granted cards examined
    granted: int = 0
    points: int = 0
    refused: list[tuple[str, str]] = field(default_factory=list)  # (idm, error code): the ledger refused the grant


@dataclass
class CampaignsReport:
    issuer: str
    on: date
    campaigns: list[CampaignReport] = field(default_factory=list)

    @property
    def granted(self) -> int:
        return sum(c.granted for c in self.campaigns)

    @property
    def points(self) -> int:
        return sum(c.points for c in self.campaigns)


def run_campaigns(
    campaigns: Campaigns,
    terminals: TerminalService,
    issuer_id: str,
    *,
    on: date,
    state: JobState,
    since: date | None = None,
    fail_after: int | None = None,
) -> CampaignsReport:
    """Grant, for every campaign of the issuer, what is due on or before day `on` (the
    issuer's today, or earlier), sweeping the days from `since` (default: the day after
    the campaign's last day swept, or its start) to `on`. What the terminals recorded
    (the cards that charged, their charges) is read through `terminals`."""
    ledger, store = campaigns.ledger, campaigns.store
    if on > ledger.today(issuer_id):
        raise ValueError(f"cannot run the campaigns as of {on}, after the issuer's today")
    run = _Run(ledger, store, terminals, state, ledger.issuer(issuer_id), on, fail_after)
    report = CampaignsReport(issuer_id, on)
    for campaign in sorted(store.campaigns(issuer_id), key=lambda c: c.campaign_id):
        report.campaigns.append(run.campaign(campaign, since))
    logger().info(
        "campaigns done",
        extra={"issuer": issuer_id, "on": on.isoformat(), "campaigns": len(report.campaigns),
               "cards": sum(c.cards for c in report.campaigns), "granted": report.granted, "points": report.points},
    )
    return report


class _Run:
    def __init__(
        self, ledger: Ledger, store: CampaignStore, terminals: TerminalService, state: JobState, issuer: Issuer,
        on: date, fail_after: int | None,
    ) -> None:
        self.ledger = ledger
        self.store = store
        self.terminals = terminals
        self.state = state
        self.issuer = issuer
        self.on = on
        self.fail_after = fail_after
        self.examined = 0
        # A run that catches up reads a month on several days (its reward day, its closing
        # day, the settlement): once is enough, the run sees every record made so far.
        self._charging: dict[str, list[str]] = {}

    def campaign(self, campaign: Campaign, since: date | None) -> CampaignReport:
        report = CampaignReport(campaign.campaign_id)
        job = job_name(campaign.campaign_id)
        if since is None:
            last = self.state.last_done(job, campaign.issuer)
            since = last + timedelta(days=1) if last else campaign.starts_on
        for sweep in domain.sweeps(campaign, since, self.on, late_days=LATE_DAYS):
            self.sweep(campaign, sweep, report)
            # Only the days that read charges are recorded: the others cost nothing to walk again.
            self.state.mark_done(job, campaign.issuer, sweep.day)
            report.days.append(sweep.day)
        return report

    def sweep(self, campaign: Campaign, sweep: Sweep, report: CampaignReport) -> None:
        idms = sorted({idm for month in sweep.months for idm in self.charging_cards(month)})
        standing = self.store.standing(campaign.issuer, campaign.campaign_id, idms)
        for idm in idms:
            enrolment = standing.get(idm)
            if enrolment is None or enrolment.granted:
                continue
            self.examine(campaign, enrolment, report)
            self.examined += 1
            if self.fail_after is not None and self.examined >= self.fail_after:
                raise JobInterrupted(f"stopped after {self.examined} cards")

    def charging_cards(self, month: str) -> list[str]:
        if month not in self._charging:
            self._charging[month] = self.terminals.charging_cards(self.issuer.issuer_id, month)
        return self._charging[month]

    def examine(self, campaign: Campaign, enrolment: Enrolment, report: CampaignReport) -> None:
        report.cards += 1
        idm = enrolment.idm
        # The campaign's months of the card's charges (one query of its card-month briefs),
        # never its whole history.
        charges = _charges(self.terminals.card_charges(idm, campaign.months()), self.issuer.local_date)
        award = domain.award(campaign, enrolment.enrolled_on, charges)
        if award is None or award.due_on > self.on:
            return
        once = Claim(*keys.granted(campaign.issuer, campaign.campaign_id, idm), error=AlreadyGranted)
        try:
            # Valid from the day it is granted (the ledger's today), so a grant made late
            # by a catch-up still has its full validity.
            result = self.ledger.grant(
                idm, award.points, request_id=request_id(campaign.issuer, campaign.campaign_id, idm), actor=ACTOR,
                source=Source.CAMPAIGN, validity_months=campaign.validity_months, reason=campaign.name,
                issuer_id=campaign.issuer, claims=[once],
            )
        except (AlreadyGranted, IdempotencyConflict):
            # Another run granted the card meanwhile (from its charges as they stood then).
            return
        except ChiikiError as exc:  # the ledger's refusal, or a claim's (a campaign error)
            report.refused.append((idm, exc.code))
            return
        report.granted += 1
        report.points += result["granted"]


def _charges(charges: Iterable[MonthCharge], local_date: Callable[[datetime], date]) -> list[Charge]:
    """The card's charges as the campaign rules count them."""
    return [Charge(c.at, local_date(c.at), c.card_seq, c.amount, c.charge_kind or "") for c in charges]
