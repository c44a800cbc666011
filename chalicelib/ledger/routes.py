"""Public read routes of the ledger context."""

from __future__ import annotations

from chalice import Blueprint

from .. import services
from ..http import json_errors

bp = Blueprint(__name__)


@bp.route("/api/health", methods=["GET"])
def health() -> dict:
    return {"status": "ok"}


@bp.route("/api/issuers/{issuer_id}", methods=["GET"])
@json_errors
def issuer(issuer_id: str) -> dict:
    found = services.ledger().issuer(issuer_id)
    return {"issuer": found.issuer_id, "point_name": found.point_name, "validity_months": found.validity_months}
