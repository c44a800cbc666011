"""The one place that turns domain errors into HTTP responses: JSON with a stable
machine code and a message."""

from __future__ import annotations

import functools
from collections.abc import Callable

from chalice import Response

from . import observability
from .campaigns import errors as campaign_errors
from .errors import Busy, ChiikiError
from .imports import errors as import_errors
from .ledger import errors as ledger_errors
from .mypage.errors import MyPageError
from .operators import errors as operator_errors
from .reports import errors as report_errors
from .schemas import MAX_PATH_PARAMETER, InputRefused, ParameterTooLong
from .terminals import errors as terminal_errors

STATUS: dict[type[Exception], int] = {
    ledger_errors.InvalidAmount: 400,
    ledger_errors.InvalidRequest: 400,
    ledger_errors.WrongIssuer: 403,
    ledger_errors.NotYourSpend: 403,
    ledger_errors.CardNotFound: 404,
    ledger_errors.UnknownIssuer: 404,
    ledger_errors.SpendNotFound: 404,
    ledger_errors.InsufficientPoints: 409,
    ledger_errors.CardClosed: 409,
    ledger_errors.CardAlreadyExists: 409,
    ledger_errors.AlreadyCancelled: 409,
    ledger_errors.IdempotencyConflict: 409,
    ledger_errors.InitialAlreadyGranted: 409,
    Busy: 503,  # the ledger's LedgerBusy, and Contended from any transaction
    terminal_errors.SignatureRejected: 401,
    terminal_errors.InvalidBody: 400,
    terminal_errors.ModeNotAllowed: 403,
    terminal_errors.UnknownRecord: 404,
    terminal_errors.RecordConflict: 409,
    terminal_errors.EventClosed: 409,
    terminal_errors.AlreadyCheckedIn: 409,
    terminal_errors.AlreadyCancelled: 409,
    terminal_errors.AmountOverLimit: 400,
    terminal_errors.RecordRefused: 409,
    campaign_errors.InvalidCampaign: 400,
    campaign_errors.UnknownCampaign: 404,
    campaign_errors.CampaignExists: 409,
    campaign_errors.EnrolmentClosed: 409,
    campaign_errors.AlreadyEnrolled: 409,
    campaign_errors.AlreadyGranted: 409,
    campaign_errors.CannotExtend: 409,
    operator_errors.NoOperatorIdentity: 403,
    operator_errors.InvalidBody: 400,
    operator_errors.OtherIssuersRecord: 403,
    operator_errors.UnknownRecord: 404,
    operator_errors.UnknownJob: 404,
    operator_errors.TerminalExists: 409,
    operator_errors.ReplacementMismatch: 409,
    import_errors.UnknownKind: 404,
    import_errors.TooLargeForApi: 413,
    import_errors.FileRefused: 400,
    import_errors.RunSuperseded: 409,
    report_errors.InvalidMonth: 400,
    report_errors.UnknownReport: 404,
    report_errors.NotWrittenYet: 404,
}


def error_response(exc: ChiikiError) -> Response:
    if isinstance(exc, MyPageError):
        headers = {"Cache-Control": "no-store"}
        retry_after = getattr(exc, "retry_after", None)  # a MyPage refusal saying when to try again
        if retry_after:
            headers["Retry-After"] = str(retry_after)
        return Response(body={"code": exc.code, "message": str(exc)}, status_code=exc.status, headers=headers)
    status = next((code for cls, code in STATUS.items() if isinstance(exc, cls)), 400)
    body = {"code": exc.code, "message": str(exc)}
    if isinstance(exc, ledger_errors.InsufficientPoints):
        body["balance"] = exc.balance
    return Response(body=body, status_code=status)


def json_errors(view: Callable, *, japanese: bool = False) -> Callable:
    """Domain errors as JSON, and path parameters over MAX_PATH_PARAMETER refused before
    the view runs. `japanese`: the routes answer residents (MyPage), so a refusal made
    before the route's own checks (a body too large or too deep, a path parameter too
    long) carries its Japanese message."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        if any(isinstance(value, str) and len(value) > MAX_PATH_PARAMETER for value in kwargs.values()):
            return input_refused(ParameterTooLong(), japanese=japanese)  # kwargs are the path's parameters
        try:
            return view(*args, **kwargs)
        except ChiikiError as exc:  # any context's error (chalicelib/errors.py)
            if isinstance(exc, terminal_errors.SignatureRejected):
                _signature_rejected(exc)
            if isinstance(exc, terminal_errors.RecordRefused):
                _record_refused(exc)
            return error_response(exc)
        except InputRefused as exc:
            return input_refused(exc, japanese=japanese)

    return wrapper


def input_refused(exc: InputRefused, *, japanese: bool) -> Response:
    body = {"code": exc.code, "message": exc.japanese if japanese else str(exc)}
    headers = {"Cache-Control": "no-store"} if japanese else None
    return Response(body=body, status_code=exc.status, headers=headers)


def _signature_rejected(exc: terminal_errors.SignatureRejected) -> None:
    """A terminal request refused for its signature: the alarm counts these (a spike means
    replays, a device with a wrong clock or someone forging a terminal). `terminal` is the
    id the request claimed, so an operator can find the device."""
    observability.count(observability.SIGNATURE_REJECTED)
    observability.logger().info("signature rejected", extra={"code": exc.code, "terminal": exc.key_id})


def _record_refused(exc: terminal_errors.RecordRefused) -> None:
    """An e-money payment or charge record refused by a limit (§6.2): the records-refused
    alarm counts these per reason (a spike means a terminal key claiming payments that
    no card made, or limits set too low for a busy store)."""
    observability.count(observability.EMONEY_RECORD_REFUSED, reason=exc.reason)
    observability.logger().info("e-money record refused", extra={"code": exc.code, "terminal": exc.terminal})
