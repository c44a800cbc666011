"""The one place that turns domain errors into HTTP responses: JSON with a stable
machine code and a message."""

from __future__ import annotations

import functools
from collections.abc import Callable

from chalice import Response

from .ledger import errors as ledger_errors
from .mypage.errors import MyPageError
from .terminals import errors as terminal_errors

STATUS: dict[type[Exception], int] = {
    ledger_errors.InvalidAmount: 400,
    ledger_errors.InvalidRequest: 400,
    ledger_errors.WrongIssuer: 403,
    ledger_errors.NotYourSpend: 403,
    ledger_errors.CardNotFound: 404,
    ledger_errors.SpendNotFound: 404,
    ledger_errors.InsufficientPoints: 409,
    ledger_errors.CardClosed: 409,
    ledger_errors.CardAlreadyExists: 409,
    ledger_errors.AlreadyCancelled: 409,
    ledger_errors.IdempotencyConflict: 409,
    ledger_errors.LedgerBusy: 503,
    terminal_errors.SignatureRejected: 401,
    terminal_errors.InvalidBody: 400,
    terminal_errors.ModeNotAllowed: 403,
    terminal_errors.UnknownRecord: 404,
    terminal_errors.RecordConflict: 409,
    terminal_errors.EventClosed: 409,
    terminal_errors.AlreadyCheckedIn: 409,
    terminal_errors.AlreadyCancelled: 409,
}


def error_response(exc: ledger_errors.LedgerError | MyPageError) -> Response:
    if isinstance(exc, MyPageError):
        return Response(body={"code": exc.code, "message": str(exc)}, status_code=exc.status,
                        headers={"Cache-Control": "no-store"})
    status = next((code for cls, code in STATUS.items() if isinstance(exc, cls)), 400)
    body = {"code": exc.code, "message": str(exc)}
    if isinstance(exc, ledger_errors.InsufficientPoints):
        body["balance"] = exc.balance
    return Response(body=body, status_code=status)


def json_errors(view: Callable) -> Callable:
    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        try:
            return view(*args, **kwargs)
        except (ledger_errors.LedgerError, MyPageError) as exc:
            return error_response(exc)

    return wrapper
