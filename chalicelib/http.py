"""The one place that turns domain errors into HTTP responses: JSON with a stable
machine code and a message. Each error carries its own status, body and headers
(chalicelib/errors.py), so this module imports no context."""

from __future__ import annotations

import functools
from collections.abc import Callable

from chalice import Response

from .errors import ChiikiError
from .schemas import MAX_PATH_PARAMETER, InputRefused, ParameterTooLong


def error_response(exc: ChiikiError) -> Response:
    return Response(body=exc.body(), status_code=exc.http_status, headers=exc.headers() or None)


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
            exc.observe()
            return error_response(exc)
        except InputRefused as exc:
            return input_refused(exc, japanese=japanese)

    return wrapper


def input_refused(exc: InputRefused, *, japanese: bool) -> Response:
    body = {"code": exc.code, "message": exc.japanese if japanese else str(exc)}
    headers = {"Cache-Control": "no-store"} if japanese else None
    return Response(body=body, status_code=exc.status, headers=headers)

