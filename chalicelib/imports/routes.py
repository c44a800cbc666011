"""The admin API's CSV import (a Blueprint, IAM-authorized like the other admin routes):

    POST /api/admin/v1/issuers/{issuer_id}/imports/{kind}     Content-Type: text/csv

The body is the CSV file (UTF-8, BOM or not); `kind` is cards, merchants, terminals,
events, admin-grants or emoney-settlements. The answer is the import's result: `result`
(the summary and each rejected row's number and reason) and `csv`, the result file's text (rejected rows
with their content). With `Accept: text/csv` the answer is the result file itself.
200 when every row was handled, 202 when time ran out first (send the same file again:
the rows already done come back unchanged). Files over 1,000 rows are refused: drop
them in the imports bucket. The issuer is in the path, as in chalicelib/operators, so
an IAM policy can scope an operator to one issuer."""

from __future__ import annotations

from chalice import Blueprint, Response

from .. import services
from ..admin_http import IAM, operator_of
from ..http import json_errors

bp = Blueprint(__name__)


@bp.route("/api/admin/v1/issuers/{issuer_id}/imports/{kind}", methods=["POST"], authorizer=IAM,
          content_types=["text/csv"])
@json_errors
def import_csv(issuer_id: str, kind: str) -> Response:
    from ..ledger.domain import Actor

    request = bp.current_request
    actor = Actor("operator", operator_of(request))
    report = services.importer().import_body(issuer_id, kind, request.raw_body or b"", actor=actor)
    status = 200 if report.complete else 202
    text = report.result_csv.decode("utf-8")
    if "text/csv" in (request.headers.get("accept") or ""):
        return Response(body=text, status_code=status, headers={"Content-Type": "text/csv; charset=utf-8"})
    return Response(body={"result": report.as_dict(), "csv": text.removeprefix("\ufeff")}, status_code=status)
