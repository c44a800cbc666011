"""Campaign errors: one root, one subclass per rule, each with a stable code.

The root derives from the shared ChiikiError so the one HTTP error mapping
(chalicelib/http.py) serves the admin API to come."""

from __future__ import annotations

from ..errors import ChiikiError


class CampaignError(ChiikiError):
    code = "campaign_error"


class InvalidCampaign(CampaignError):
    code = "invalid_campaign"

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


class CampaignExists(CampaignError):
    code = "campaign_exists"
    http_status = 409

    def __init__(self) -> None:
        super().__init__("a campaign with this id already exists")


class UnknownCampaign(CampaignError):
    code = "unknown_campaign"
    http_status = 404

    def __init__(self, campaign_id: str) -> None:
        super().__init__(f"no campaign {campaign_id!r}")


class EnrolmentClosed(CampaignError):
    code = "enrolment_closed"
    http_status = 409

    def __init__(self) -> None:
        super().__init__("the campaign ends before that enrolment date")


class AlreadyEnrolled(CampaignError):
    """A card is enrolled once per campaign; its enrolment date does not move (seed 002:
    one card per application, not changeable)."""

    code = "already_enrolled"
    http_status = 409

    def __init__(self) -> None:
        super().__init__("the card is already enrolled in this campaign on another date")


class AlreadyGranted(CampaignError):
    code = "campaign_already_granted"
    http_status = 409

    def __init__(self) -> None:
        super().__init__("this card has already received this campaign's grant")


class CannotExtend(CampaignError):
    code = "cannot_extend"
    http_status = 409
