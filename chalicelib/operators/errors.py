"""Admin API errors: one root, one subclass per rule, each with a stable code and a
message in plain English for the operator. The root derives from the shared ChiikiError
so the one HTTP error mapping (chalicelib/http.py) serves them."""

from __future__ import annotations

from ..errors import ChiikiError


class OperatorError(ChiikiError):
    code = "operator_error"


class NoOperatorIdentity(OperatorError):
    """A deployed admin route reached without an IAM principal: the route lost its
    authorizer, or API Gateway was bypassed. Refused rather than recorded anonymously."""

    code = "no_operator_identity"
    http_status = 403

    def __init__(self) -> None:
        super().__init__("this request carries no IAM identity; the admin API must be called with SigV4 through IAM")


class InvalidBody(OperatorError):
    code = "invalid_request"


class OtherIssuersRecord(OperatorError):
    """Terminal and event ids are global: one issuer's operator may not take over or
    change another issuer's."""

    code = "wrong_issuer"
    http_status = 403

    def __init__(self, what: str) -> None:
        super().__init__(f"{what} belongs to another issuer")


class UnknownRecord(OperatorError):
    code = "not_found"
    http_status = 404


class TerminalExists(OperatorError):
    code = "terminal_exists"
    http_status = 409

    def __init__(self, terminal_id: str) -> None:
        super().__init__(f"terminal {terminal_id} is already registered; send replace_key to rotate its key")


class ReplacementMismatch(OperatorError):
    code = "replacement_mismatch"
    http_status = 409

    def __init__(self) -> None:
        super().__init__("the replacement card number and IDm belong to different cards")


class UnknownJob(OperatorError):
    code = "unknown_job"
    http_status = 404

    def __init__(self, name: str, known: tuple[str, ...]) -> None:
        super().__init__(f"no job {name!r}; the jobs are {', '.join(known)}")
