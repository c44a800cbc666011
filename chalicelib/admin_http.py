"""What every admin Blueprint shares (operators', imports', reports' routes): the IAM
authorizer and the operator behind a request.

A module of its own beside chalicelib/http.py, not in it: http.py is imported by every
route module (the terminal API and MyPage too) and stays about turning errors into
responses; these pieces concern only the IAM-authorized admin API. Not in
operators/routes.py either: no routes module is imported by another."""

from __future__ import annotations

import os

from chalice import IAMAuthorizer

from .operators.domain import operator_arn

IAM = IAMAuthorizer()


def operator_of(request) -> str:
    """The IAM principal behind an admin request (every admin Blueprint asks here):
    deployed, in Lambda, a request without one is refused (operators.domain.operator_arn)."""
    return operator_arn(request.context.get("identity"), deployed="AWS_LAMBDA_FUNCTION_NAME" in os.environ)
