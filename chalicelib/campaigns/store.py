"""Campaign items in the application table (chalicelib/table.py):

    CAMPAIGNS#<issuer>                 CAMPAIGN#<id>   a campaign's settings (the partition lists them)
    ENROL#<issuer>#<campaign>#<shard>  CARD#<idm>      a card's enrolment, with its date
    ENROL#<issuer>#<campaign>#<shard>  GRANTED#<idm>   the campaign's one grant to the card is made
                                                       (a claim put in the grant's transaction)

What the terminals record (the cards that charged in a month, a card's charges) the job
reads through the terminals' service (TerminalService.charging_cards, .card_charges): it
finds its cards through the CHARGES# partitions of the months due, then reads their
enrolments and grant marks here, in one BatchGetItem per 50 cards, and each enrolled
card's charges of the campaign's months with one query of its CHARGED# card-month briefs:
its reads follow the cards that charged, not the number of cards, of enrolments, or of a
card's past records.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from pynamodb.attributes import ListAttribute, NumberAttribute, UnicodeAttribute
from pynamodb.exceptions import PutError, UpdateError

from ..table import ClaimItem, TableItem
from . import keys
from .domain import Campaign, Enrolment
from .errors import CampaignExists


class CampaignItem(TableItem, discriminator="campaign"):
    name = UnicodeAttribute()
    rate_bps = NumberAttribute()
    cap = NumberAttribute()
    threshold = NumberAttribute()
    grant_day = NumberAttribute()
    starts_on = UnicodeAttribute()  # ISO dates
    ends_on = UnicodeAttribute()
    excluded_kinds = ListAttribute(of=UnicodeAttribute, default=list)
    validity_months = NumberAttribute(null=True)


class EnrolmentItem(TableItem, discriminator="campaign_enrolment"):
    enrolled_on = UnicodeAttribute()


def _failed_condition(exc: Exception) -> bool:
    return getattr(exc, "cause_response_code", None) == "ConditionalCheckFailedException"


def _campaign(issuer: str, item: CampaignItem) -> Campaign:
    return Campaign(
        issuer=issuer,
        campaign_id=keys.campaign_id(item.sk),
        name=item.name,
        rate_bps=item.rate_bps,
        cap=item.cap,
        threshold=item.threshold,
        grant_day=item.grant_day,
        starts_on=date.fromisoformat(item.starts_on),
        ends_on=date.fromisoformat(item.ends_on),
        excluded_kinds=frozenset(item.excluded_kinds or ()),
        validity_months=item.validity_months,
    )


class CampaignStore:
    """The adapter the campaign service talks to. Nothing above it touches DynamoDB; its
    items reach the table through their models, bound once to the settings' table."""

    # -- campaigns ------------------------------------------------------------------------

    def add_campaign(self, c: Campaign) -> None:
        """Raises CampaignExists: a campaign's settings are not overwritten."""
        item = CampaignItem(
            *keys.campaign(c.issuer, c.campaign_id),
            name=c.name,
            rate_bps=c.rate_bps,
            cap=c.cap,
            threshold=c.threshold,
            grant_day=c.grant_day,
            starts_on=c.starts_on.isoformat(),
            ends_on=c.ends_on.isoformat(),
            excluded_kinds=sorted(c.excluded_kinds),
            validity_months=c.validity_months,
        )
        try:
            item.save(condition=TableItem.pk.does_not_exist())
        except PutError as exc:
            if _failed_condition(exc):
                raise CampaignExists() from exc
            raise

    def get_campaign(self, issuer: str, campaign_id: str) -> Campaign | None:
        try:
            return _campaign(issuer, CampaignItem.get(*keys.campaign(issuer, campaign_id), consistent_read=True))
        except CampaignItem.DoesNotExist:
            return None

    def campaigns(self, issuer: str) -> list[Campaign]:
        return [_campaign(issuer, item) for item in CampaignItem.query(keys.campaigns(issuer), consistent_read=True)]

    def move_end(self, c: Campaign, ends_on: date) -> bool:
        """Set a new end unless the end changed since `c` was read. Returns whether it moved."""
        try:
            CampaignItem(*keys.campaign(c.issuer, c.campaign_id)).update(
                actions=[CampaignItem.ends_on.set(ends_on.isoformat())],
                condition=CampaignItem.ends_on == c.ends_on.isoformat(),
            )
        except UpdateError as exc:
            if _failed_condition(exc):
                return False
            raise
        return True

    # -- enrolments -------------------------------------------------------------------------

    def add_enrolment(self, issuer: str, campaign_id: str, e: Enrolment) -> date | None:
        """Enrol the card once. Returns None when enrolled now, or the date it was enrolled on before."""
        pk, sk = keys.enrolment(issuer, campaign_id, e.idm)
        try:
            EnrolmentItem(pk, sk, enrolled_on=e.enrolled_on.isoformat()).save(condition=TableItem.pk.does_not_exist())
        except PutError as exc:
            if not _failed_condition(exc):
                raise
            return date.fromisoformat(EnrolmentItem.get(pk, sk, consistent_read=True).enrolled_on)
        return None

    def enrolments(self, issuer: str, campaign_id: str) -> list[Enrolment]:
        """Every enrolment of the campaign with its grant mark: two queries per shard,
        for operators and reports (the job does not list enrolments)."""
        enrolled: dict[str, date] = {}
        granted: set[str] = set()
        for pk in keys.enrolment_shards(issuer, campaign_id):
            for item in EnrolmentItem.query(pk, TableItem.sk.startswith(keys.CARD), consistent_read=True):
                self._collect(item, enrolled, granted)
            for item in ClaimItem.query(pk, TableItem.sk.startswith(keys.GRANTED), consistent_read=True):
                self._collect(item, enrolled, granted)
        return sorted((Enrolment(i, d, i in granted) for i, d in enrolled.items()), key=lambda e: e.idm)

    def standing(self, issuer: str, campaign_id: str, idms: Iterable[str]) -> dict[str, Enrolment]:
        """The enrolment and grant mark of each card that is enrolled, by IDm
        (strongly consistent BatchGetItem: two keys a card, 50 cards a call)."""
        wanted = [k for idm in idms for k in (keys.enrolment(issuer, campaign_id, idm),
                                              keys.granted(issuer, campaign_id, idm))]
        enrolled: dict[str, date] = {}
        granted: set[str] = set()
        for item in TableItem.batch_get(wanted, consistent_read=True):
            self._collect(item, enrolled, granted)
        return {i: Enrolment(i, d, i in granted) for i, d in enrolled.items()}

    @staticmethod
    def _collect(item: TableItem, enrolled: dict[str, date], granted: set[str]) -> None:
        if isinstance(item, EnrolmentItem):
            enrolled[keys.enrolled_idm(item.sk)] = date.fromisoformat(item.enrolled_on)
        elif isinstance(item, ClaimItem) and item.sk.startswith(keys.GRANTED):
            granted.add(keys.granted_idm(item.sk))
