"""Logs, metrics and traces for every function of the app (Powertools).

`register(app)` installs one Chalice middleware for every kind of event (HTTP, schedules,
S3, pure Lambda). Around each invocation it:

- puts a correlation id in every log line: the API Gateway request id for HTTP, the
  Lambda request id otherwise (JSON lines from Powertools Logger, service `chiiki-points`);
- traces: every function has Lambda's active tracing (`"xray": true` in .chalice/config.json:
  `Tracing: Active`; API Gateway's stage traces too), which records each invocation's
  segment without any SDK in the function. The API function adds nothing to it: importing
  the X-Ray SDK costs its first request seconds (issue 14), so an HTTP request never
  imports it. Every other function (schedules, S3, SQS: minutes of DynamoDB calls, where a
  cold start does not matter) opens a subsegment with botocore patched, importing the SDK
  on its first use, and only when tracing is on (`tracing_on()`: inside Lambda, not under
  `chalice local` or SAM, not with POWERTOOLS_TRACE_DISABLED set, Powertools' own rule read
  without importing Powertools), so tests and `make run` never import it;
- flushes the business metrics counted during the invocation as CloudWatch embedded
  metric format (EMF) lines on stdout: namespace `ChiikiPoints`, dimensions `service` and
  `stage` (plus `source` for PointsGranted). EMF needs no API call: CloudWatch reads the
  metrics from the function's log.

A job run from the command line (`python -m chalicelib.reports`, `python -m localdev.jobs`)
runs inside `command(name)` instead: its log lines carry a correlation id of their own and
the command's name, on stderr (stdout is the command's output).

Code anywhere counts a metric with `count(name, value, **dimensions)`, which is plain
Python: outside an invocation (unit tests, scripts) it does nothing.

Powertools is imported on first use, never by `import app`, so cold starts stay light.

Never log personal data: no e-mail address, birth date, card number or full IDm; log keyed
hashes or short prefixes. Nothing here logs an event, a body, a path or a query string.
"""

from __future__ import annotations

import logging
import os
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import lru_cache
from typing import Any

SERVICE = "chiiki-points"
NAMESPACE = "ChiikiPoints"

# The business metrics (all counts; points are integers).
POINTS_SPENT = "PointsSpent"
POINTS_GRANTED = "PointsGranted"  # dimension `source`: initial, rebate, event, admin, campaign
POINTS_EXPIRED = "PointsExpired"
POINTS_VOIDED = "PointsVoided"
POINTS_CANCELLED = "PointsCancelled"  # point payments taken back (the points return to their lots)
REBATES_GRANTED = "RebatesGranted"  # rebate grants (cards), beside the points in PointsGranted{source=rebate}
SIGNATURE_REJECTED = "SignatureRejected"
MYPAGE_REFUSED = "MyPageRefused"  # MyPage attempts refused by a limit (codes, card links, logins)
EMONEY_RECORD_REFUSED = "EmoneyRecordRefused"  # dimension `reason`: amount, terminal_day, card_day
# The rebate day of a month passed without its e-money settlement file (reconciliation):
# counted once per issuer on every rebate run until the file arrives.
RECONCILIATION_LATE = "ReconciliationLate"

# These libraries log whole requests at DEBUG (item attributes, e-mail messages); they
# stay at WARNING whatever the root level, so turning debugging on leaks no personal data.
CHATTY = ("botocore", "boto3", "pynamodb", "urllib3", "aws_xray_sdk")

# What this module adds to every log line of an invocation, removed when it ends.
_INVOCATION_KEYS = ("correlation_id", "function_name", "function_request_id", "cold_start", "route")

Dimensions = tuple[tuple[str, str], ...]
_pending: ContextVar[Counter[tuple[str, Dimensions]] | None] = ContextVar("chiiki_pending_metrics", default=None)
_cold = True


def quiet_libraries() -> None:
    for name in CHATTY:
        logging.getLogger(name).setLevel(logging.WARNING)


@lru_cache(maxsize=1)
def logger():
    from aws_lambda_powertools import Logger

    log = Logger(service=SERVICE)
    # Chalice's app logger has the same name (the app's) and a plain-text handler of its
    # own: keep only the JSON one, so every line (Chalice's errors too) is JSON, and once.
    for handler in list(log.handlers):
        if handler is not log.registered_handler:
            log.removeHandler(handler)
    return log


@lru_cache(maxsize=1)
def tracer():
    from aws_lambda_powertools import Tracer

    # Only botocore is patched: every DynamoDB, SES and S3 call becomes a subsegment.
    return Tracer(service=SERVICE, patch_modules=("botocore",))


_TRUTHY = ("1", "y", "yes", "t", "true", "on")


def tracing_on() -> bool:
    """Whether the X-Ray SDK would trace here: Powertools' rule (Tracer._is_tracer_disabled)
    read from the environment, so deciding imports neither Powertools' tracer nor the SDK."""
    if os.environ.get("POWERTOOLS_TRACE_DISABLED", "false").strip().lower() in _TRUTHY:
        return False
    if os.environ.get("AWS_SAM_LOCAL") or os.environ.get("AWS_CHALICE_CLI_MODE"):
        return False
    return bool(os.environ.get("LAMBDA_TASK_ROOT"))


def count(name: str, value: int = 1, **dimensions: str) -> None:
    """Count `value` of metric `name` in the current invocation (flushed when it ends)."""
    pending = _pending.get()
    if pending is None or not value:
        return
    pending[(name, tuple(sorted(dimensions.items())))] += int(value)


def register(app) -> None:
    """Install the middleware on every function of `app` (call it once, in app.py)."""
    app.register_middleware(observe, "all")


def observe(event: Any, get_response: Callable[[Any], Any]) -> Any:
    """The middleware: log context, a trace subsegment and a metrics flush around one invocation."""
    global _cold
    cold, _cold = _cold, False
    context = _lambda_context(event)
    route = _route(event)
    log = logger()
    log.append_keys(
        correlation_id=_correlation_id(event, context),
        function_name=getattr(context, "function_name", None),
        function_request_id=getattr(context, "aws_request_id", None),
        cold_start=cold,
        route=route,
    )
    token = _pending.set(Counter())
    started = time.perf_counter()
    outcome = "error"
    try:
        response = _traced(event, get_response, route or getattr(context, "function_name", None) or "handler", cold)
        outcome = str(getattr(response, "status_code", "ok"))
        return response
    finally:
        try:
            pending = _pending.get()
            _pending.reset(token)
            if pending:
                _flush(pending)
            log.info("invocation", extra={"outcome": outcome, "ms": round((time.perf_counter() - started) * 1000)})
        finally:
            log.remove_keys(_INVOCATION_KEYS)


@contextmanager
def command(name: str) -> Iterator[str]:
    """Around a job run from the command line: every log line carries a fresh correlation id
    (yielded) and `function_name` = `name`, as a function's carry its request id, and goes
    to stderr; an `invocation` line ends the run. Nothing is counted (no EMF on a terminal)."""
    log = logger()
    correlation_id = str(uuid.uuid4())
    handler = log.registered_handler
    stream = handler.setStream(sys.stderr) if isinstance(handler, logging.StreamHandler) else None
    log.append_keys(correlation_id=correlation_id, function_name=name)
    started = time.perf_counter()
    outcome = "error"
    try:
        yield correlation_id
        outcome = "ok"
    finally:
        try:
            log.info("invocation", extra={"outcome": outcome, "ms": round((time.perf_counter() - started) * 1000)})
        finally:
            log.remove_keys(("correlation_id", "function_name"))
            if stream is not None:
                handler.setStream(stream)


def _traced(event: Any, get_response: Callable[[Any], Any], name: str, cold: bool) -> Any:
    # An HTTP request (the API function) is traced by Lambda and API Gateway alone.
    if hasattr(event, "lambda_context") or not tracing_on():
        return get_response(event)
    trace = tracer()
    if trace.disabled:
        return get_response(event)
    with trace.provider.in_subsegment(f"## {name}") as subsegment:
        subsegment.put_annotation(key="ColdStart", value=cold)
        subsegment.put_annotation(key="Service", value=SERVICE)
        return get_response(event)


def _lambda_context(event: Any) -> Any:
    # An HTTP request's `.context` is API Gateway's request context; its Lambda context is
    # `.lambda_context`. Every other event carries the Lambda context as `.context`.
    if hasattr(event, "lambda_context"):
        return event.lambda_context
    return getattr(event, "context", None)


def _correlation_id(event: Any, context: Any) -> str | None:
    request_context = getattr(event, "context", None) if hasattr(event, "lambda_context") else None
    if isinstance(request_context, dict) and request_context.get("requestId"):
        return request_context["requestId"]
    return getattr(context, "aws_request_id", None)


def _route(event: Any) -> str | None:
    """The route template (`/api/mypage/v1/cards/{card_id}`), never the path with its values."""
    if not hasattr(event, "lambda_context"):
        return None
    request_context = getattr(event, "context", None) or {}
    method, resource = request_context.get("httpMethod"), request_context.get("resourcePath")
    return f"{method} {resource}" if method and resource else None


def _flush(pending: Counter[tuple[str, Dimensions]]) -> None:
    """One EMF line per dimension set (EMF applies its dimensions to every metric in a line)."""
    from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

    from .settings import get_settings

    stage = get_settings().stage
    by_dimensions: dict[Dimensions, list[tuple[str, int]]] = {}
    for (name, dimensions), value in pending.items():
        by_dimensions.setdefault(dimensions, []).append((name, value))
    for dimensions, values in by_dimensions.items():
        metrics = EphemeralMetrics(namespace=NAMESPACE, service=SERVICE)
        metrics.add_dimension(name="stage", value=stage)
        for key, value in dimensions:
            metrics.add_dimension(name=key, value=value)
        for name, value in values:
            metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
        metrics.flush_metrics()
