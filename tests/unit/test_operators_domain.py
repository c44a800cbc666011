"""The operators' pure rules: who the operator is (and that a deployed function never
falls back to a placeholder), the reasons recorded, and how an entry reads."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

import pytest

from chalicelib.ledger.domain import Actor, Entry, Movement, Op
from chalicelib.operators.domain import (
    LOCAL_OPERATOR,
    ReturnReason,
    entry_view,
    ledger_request_id,
    operator_arn,
    plain,
    return_reason,
)
from chalicelib.operators.errors import NoOperatorIdentity

ARN = "arn:aws:iam::123456789012:user/ops-tanaka"


def test_the_operator_is_the_iam_principal_api_gateway_authorized():
    assert operator_arn({"userArn": ARN, "sourceIp": "192.0.2.1"}, deployed=True) == ARN
    assert operator_arn({"userArn": ARN}, deployed=False) == ARN


@pytest.mark.parametrize("identity", [None, {}, {"sourceIp": "127.0.0.1"}, {"userArn": ""}, {"userArn": None}])
def test_without_a_principal_a_deployed_function_refuses_and_make_run_uses_a_placeholder(identity):
    with pytest.raises(NoOperatorIdentity):
        operator_arn(identity, deployed=True)
    assert operator_arn(identity, deployed=False) == LOCAL_OPERATOR


def test_reasons_name_the_kind_first():
    assert return_reason(ReturnReason.DEATH, " 届出 ") == "return (death): 届出"
    assert return_reason(ReturnReason.MOVING, "") == "return (moving)"


def test_operator_request_ids_are_scoped_to_the_admin_api_and_the_issuer():
    assert ledger_request_id("niimi", "abc") == "operator:niimi:abc"
    assert ledger_request_id("niimi", "abc") != ledger_request_id("okayama", "abc")


def test_an_entry_reads_as_the_points_it_added_or_took():
    day = date(2023, 4, 1)
    entry = Entry(card="0123456789abcdef", seq=3, kind="spend_cancel", at=datetime(2023, 4, 1, 1, tzinfo=UTC),
                  day=day, actor=Actor("terminal", "T-1", merchant="M-1"), request="r",
                  movements=(Movement("1", Op.CANCEL, 30, day), Movement("2", Op.EXPIRE, 10, day)))
    view = entry_view(entry)
    assert view["points"] == 20 and view["actor"] == {"kind": "terminal", "id": "T-1", "merchant": "M-1"}
    assert "reason" not in view


def test_reports_become_json_ready():
    @dataclass
    class Report:
        on: date
        days: list
        kinds: frozenset
        rejected: list

    assert plain(Report(date(2023, 4, 1), [date(2023, 3, 31)], frozenset({"b", "a"}), [(2, "why")])) == {
        "on": "2023-04-01", "days": ["2023-03-31"], "kinds": ["a", "b"], "rejected": [[2, "why"]]}
