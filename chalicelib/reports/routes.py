"""The monthly reports for download (a Blueprint, IAM-authorized like the other admin routes):

    GET /api/admin/v1/issuers/{issuer_id}/reports/{month}          the month's files (JSON)
    GET /api/admin/v1/issuers/{issuer_id}/reports/{month}/{name}   one file, as written (CSV)

`month` is YYYY-MM and `name` one of reports/service.py REPORTS; a month with nothing
written yet is a 404 that says how the reports get written. The file comes back byte for
byte as the schedule wrote it (UTF-8 with BOM, CRLF), as an attachment. The issuer is in
the path, so an IAM policy scoped to one issuer reaches only that issuer's reports."""

from __future__ import annotations

from chalice import Blueprint, Response

from .. import services
from ..admin_http import IAM, operator_of
from ..http import json_errors

bp = Blueprint(__name__)
PREFIX = "/api/admin/v1/issuers/{issuer_id}/reports/{month}"


@bp.route(PREFIX, methods=["GET"], authorizer=IAM)
@json_errors
def report_list(issuer_id: str, month: str) -> dict:
    operator_of(bp.current_request)  # deployed, no principal: refused
    return services.reports().month_files(issuer_id, month)


@bp.route(PREFIX + "/{name}", methods=["GET"], authorizer=IAM)
@json_errors
def report_download(issuer_id: str, month: str, name: str) -> Response:
    operator_of(bp.current_request)  # deployed, no principal: refused
    filename, body = services.reports().report_file(issuer_id, month, name)
    headers = {"Content-Type": "text/csv; charset=utf-8", "Content-Disposition": f'attachment; filename="{filename}"',
               "Cache-Control": "no-store"}
    # A str body: API Gateway passes text through as UTF-8, so the BOM and CRLF arrive as written.
    return Response(body=body.decode("utf-8"), status_code=200, headers=headers)
