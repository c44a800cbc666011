"""A cold start, honestly: a fresh process's `import app` plus its first request, for each
kind of route, against the bare frameworks doing the least a request can.

Budget (DESIGN.md, Performance budgets; issue 14): for every kind, a fresh process's
`import app` + its first invocation takes at most 1.2x a fresh process's
`import chalice, boto3, pynamodb.models` + one DynamoDB client + one GetItem. The kinds:

  * terminal: a signed `POST /api/terminal/v1/balance` from the demo store terminal
    (the signature checked, the nonce spent, the card's balance read);
  * mypage:   `GET /api/mypage/v1/cards`, logged in (the stage secret read from Secrets
    Manager, the session and the member's links read);
  * admin:    `GET /api/admin/v1/issuers/niimi/merchants` with an IAM identity;
  * schedule: the `expire-points` function's invocation (its day is already done after the
    warm-up, so the figure is the function's start and its state reads, not a day's work).

Each child is a new interpreter that starts the clock, imports, builds its request's
services and answers it as Lambda would call the handler (`app.app(event, context)`, or
the schedule's function), then stops the clock (interpreter start-up is not counted); the
event is prepared before the clock starts. Everything talks to moto's server, run by this
process with the demo data (`localdev.stack`, without `chalice local`). The kinds
alternate, and each kind's median is compared with the baseline's median.

Tracing is off in the children, as outside Lambda. In Lambda the API function still never
imports the X-Ray SDK (chalicelib/observability.py); each child reports whether it did,
and an API child that did fails the bench. (A schedule, deployed, imports it on its first
invocation: minutes of work, where a cold start does not matter.)

Bytecode is controlled, whatever PYTHONDONTWRITEBYTECODE says and whatever __pycache__
directories exist: every child uses a private PYTHONPYCACHEPREFIX in a temporary
directory (the repository gets no __pycache__), filled once before the timed runs, so
the app, its dependencies and the baseline all load from bytecode, as in Lambda: `make
package` adds every module's bytecode to the package (tools/precompile.py), since Lambda
cannot write any and would otherwise compile the app and its packaged dependencies from
source on every cold start. Also printed, without a budget: `import app` alone against
the bare frameworks' imports alone (`import_ratio`).

    python bench/coldstart.py            # 11 runs of each kind
    python bench/coldstart.py --quick    # or BENCH_QUICK=1: 7 runs of each

Prints its figures, then as the last line one JSON object
`{"first_request_ratio_max": …, "first_request_ratio": {kind: …}, "import_ratio": …}`.
Exits 1 when over budget; then it also prints the imports `python -X importtime` finds
costliest under the worst kind's first request.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

BUDGET = 1.2
KINDS = ("terminal", "mypage", "admin", "schedule")
PASSWORD = "coldstart bench 42 horse"
OPERATOR_ARN = "arn:aws:iam::123456789012:user/coldstart-bench"

CHILD = """\
import json, os, sys, time
_event = json.loads(os.environ["BENCH_EVENT"])
class _Context:
    function_name = "chiiki-points-bench"
    aws_request_id = _event.get("requestContext", {{}}).get("requestId") or "bench"
    def get_remaining_time_in_millis(self):
        return 900_000
_start = time.perf_counter()
{imports}
_imported = time.perf_counter() - _start
{request}
_elapsed = time.perf_counter() - _start
print(json.dumps({{"s": _elapsed, "import_s": _imported, "status": _status, "xray": "aws_xray_sdk" in sys.modules}}))
"""

APP_IMPORT = "import app"
HTTP_REQUEST = "_status = app.app(_event, _Context())['statusCode']"
SCHEDULE_REQUEST = "app.expire_points(_event, _Context()); _status = 200"
BASELINE_IMPORT = "import chalice, boto3, pynamodb.models"
BASELINE_REQUEST = """\
_client = boto3.client("dynamodb", region_name=os.environ["AWS_DEFAULT_REGION"],
                       endpoint_url=os.environ["CHIIKI_DYNAMODB_ENDPOINT"])
_client.get_item(TableName=os.environ["CHIIKI_TABLE"], Key={"pk": {"S": "ISSUER#niimi"}, "sk": {"S": "ISSUER"}})
_status = 200"""


def _child_code(kind: str) -> str:
    if kind == "baseline":
        return CHILD.format(imports=BASELINE_IMPORT, request=BASELINE_REQUEST)
    return CHILD.format(imports=APP_IMPORT, request=SCHEDULE_REQUEST if kind == "schedule" else HTTP_REQUEST)


# --- events, as API Gateway and EventBridge hand them to Lambda ------------------------------

def http_event(method: str, resource: str, path: str, headers: dict[str, str], body: bytes | None = None,
               path_parameters: dict[str, str] | None = None, identity: dict | None = None) -> dict:
    request_id = str(uuid.uuid4())
    return {
        "resource": resource, "path": path, "httpMethod": method,
        "headers": headers, "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": None, "multiValueQueryStringParameters": None,
        "pathParameters": path_parameters, "stageVariables": None,
        "requestContext": {"resourcePath": resource, "httpMethod": method, "path": "/api" + path,
                           "requestId": request_id, "stage": "api", "apiId": "bench",
                           "identity": {"sourceIp": "203.0.113.7", **(identity or {})}},
        "body": body.decode() if body is not None else None, "isBase64Encoded": False,
    }


def schedule_event() -> dict:
    return {"version": "0", "id": str(uuid.uuid4()), "detail-type": "Scheduled Event", "source": "aws.events",
            "account": "123456789012", "time": "2026-01-01T15:05:00Z", "region": "ap-northeast-1",
            "resources": ["arn:aws:events:ap-northeast-1:123456789012:rule/expire-points"], "detail": {}}


class Requests:
    """Fresh first requests of each kind against the demo data (a new nonce per terminal
    request, so each one is answered like the first)."""

    def __init__(self, state_dir: Path, cookie: str) -> None:
        from localdev.demo import FRESH

        self.key = (state_dir / "demo-terminal-1.pem").read_bytes()
        self.cookie = cookie
        self.idm = FRESH.idm

    def event(self, kind: str) -> dict:
        if kind == "terminal":
            import requests

            from terminal_agent.signing import terminal_auth

            path = "/api/terminal/v1/balance"
            req = requests.Request("POST", "http://127.0.0.1" + path, data=json.dumps({"idm": self.idm}).encode(),
                                   headers={"Content-Type": "application/json"}).prepare()
            terminal_auth(self.key, "demo-terminal-1")(req)
            return http_event("POST", path, path, dict(req.headers), req.body)
        if kind == "mypage":
            path = "/api/mypage/v1/cards"
            return http_event("GET", path, path, {"Cookie": f"session={self.cookie}"})
        if kind == "admin":
            resource = "/api/admin/v1/issuers/{issuer_id}/merchants"
            return http_event("GET", resource, resource.replace("{issuer_id}", "niimi"), {},
                              path_parameters={"issuer_id": "niimi"}, identity={"userArn": OPERATOR_ARN})
        if kind == "schedule":
            return schedule_event()
        return {}  # the baseline


# --- the local stack: moto's server and the demo data, no `chalice local` ----------------------

def start_backend(state_dir: Path):
    """moto's server with the demo data, as `make run` loads it (without `chalice local`)."""
    from localdev.stack import LocalStack, free_port

    class Backend(LocalStack):
        def _start_api(self) -> None:  # the children are the API
            pass

    return Backend(api_port=free_port(), moto_port=free_port(), mail_port=free_port(), state_dir=state_dir,
                   quiet=True).__enter__()


def member_cookie(moto_url: str) -> str:
    """A resident signed up on MyPage with the demo's fresh card: her session cookie (the
    service in this process, with the stage secret's key, as the API has it)."""
    import boto3

    from chalicelib.ledger.service import Ledger
    from chalicelib.ledger.store import CardStore
    from chalicelib.mypage.service import MyPage
    from chalicelib.mypage.store import MyPageStore
    from chalicelib.table import Table
    from localdev.demo import FRESH
    from localdev.fake_aws import REGION
    from localdev.stack import stage_env

    secret = json.loads(boto3.client("secretsmanager", region_name=REGION, endpoint_url=moto_url)
                        .get_secret_value(SecretId=stage_env()["CHIIKI_SECRET_ID"])["SecretString"])
    sent: list[str] = []

    class Mailbox:
        def send(self, to: str, subject: str, body: str) -> None:
            sent.append(body)

    from chalicelib.observability import logger

    logger().setLevel("WARNING")  # this process's "code sent" line is not the bench's output
    table = Table(stage_env()["CHIIKI_TABLE"], REGION, host=moto_url)
    mypage = MyPage(Ledger(CardStore(table)), MyPageStore(table), Mailbox(), secret["secret_key"].encode())
    email = "coldstart@example.jp"
    mypage.start_signup(email)
    import re

    code = re.search(r"(\d{4})", sent[-1]).group(1)
    token = mypage.verify_signup(email, code)
    return mypage.complete_signup(token, FRESH.card_number, FRESH.birth_date, PASSWORD).cookie


# --- the children ---------------------------------------------------------------------------

def _env(base: dict[str, str], pycache: Path, *, write: bool) -> dict[str, str]:
    env = dict(base)
    env["PYTHONPYCACHEPREFIX"] = str(pycache)
    for name in ("PYTHONPROFILEIMPORTTIME", "PYTHONDONTWRITEBYTECODE", "LAMBDA_TASK_ROOT",
                 "AWS_LAMBDA_FUNCTION_NAME", "POWERTOOLS_TRACE_DISABLED"):
        env.pop(name, None)
    if not write:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def run_child(kind: str, event: dict, env: dict[str, str], *, importtime: bool = False) -> dict:
    """One fresh interpreter, started in the repo root: its timings and answer."""
    args = [sys.executable, *(["-X", "importtime"] if importtime else []), "-c", _child_code(kind)]
    out = subprocess.run(args, cwd=ROOT, env={**env, "BENCH_EVENT": json.dumps(event)},
                         capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"the {kind} child failed:\n{out.stderr[-3000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    if result["status"] != 200:
        raise SystemExit(f"the {kind} child's first request answered {result['status']}:\n{out.stdout[-3000:]}")
    result["stderr"] = out.stderr
    return result


def measure(runs: int) -> dict:
    """Medians of `runs` alternating fresh-process first requests of every kind and of the
    baseline; the first-request ratio of each kind, and the import-only ratio."""
    from localdev.fake_aws import use_fake_aws
    from localdev.stack import app_env

    use_fake_aws(in_process=False)
    with tempfile.TemporaryDirectory(prefix="chiiki-coldstart-") as tmp:
        backend = start_backend(Path(tmp, "state"))
        try:
            requests = Requests(Path(tmp, "state"), member_cookie(backend.moto_url))
            base = {**os.environ, **app_env(backend.moto_url)}
            pycache = Path(tmp, "pycache")
            writing = _env(base, pycache, write=True)
            for kind in (*KINDS, "baseline"):  # compile everything once, warm the file cache, do the day's job
                run_child(kind, requests.event(kind), writing)
            env = _env(base, pycache, write=False)
            names = [*KINDS, "baseline"]
            samples: dict[str, list[dict]] = {name: [] for name in names}
            for i in range(runs):
                for name in names[i % len(names):] + names[: i % len(names)]:  # rotate who goes first
                    samples[name].append(run_child(name, requests.event(name), env))
            worst = None
            med = {name: statistics.median(r["s"] for r in values) for name, values in samples.items()}
            ratios = {kind: med[kind] / med["baseline"] for kind in KINDS}
            worst = max(ratios, key=ratios.get)
            importtime = None
            if ratios[worst] > BUDGET:
                importtime = run_child(worst, requests.event(worst), env, importtime=True)["stderr"]
        finally:
            backend.__exit__(None, None, None)
    import_med = {name: statistics.median(r["import_s"] for r in values) for name, values in samples.items()}
    return {
        "runs": runs,
        "median_s": med,
        "import_median_s": import_med,
        "first_request_ratio": ratios,
        "first_request_ratio_max": ratios[worst],
        "worst": worst,
        "import_ratio": statistics.median(import_med[k] for k in KINDS) / import_med["baseline"],
        "xray": {kind: sum(r["xray"] for r in samples[kind]) for kind in KINDS},
        "importtime": importtime,
    }


def costliest_imports(stderr: str, top: int = 15) -> list[tuple[int, int, str]]:
    """(cumulative µs, self µs, module) of the costliest imports in -X importtime's output."""
    rows = []
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, cumulative, name = (part.strip() for part in line.removeprefix("import time:").split("|"))
        rows.append((int(cumulative), int(self_us), name))
    return sorted(rows, reverse=True)[:top]


def main(argv: list[str]) -> int:
    quick = "--quick" in argv or os.environ.get("BENCH_QUICK", "") not in ("", "0")
    result = measure(7 if quick else 11)
    med, imp = result["median_s"], result["import_median_s"]
    print(f"Fresh process: import + first request, median of {result['runs']} interleaved runs each"
          + ("  (quick mode)" if quick else ""))
    for kind in KINDS:
        print(f"  {kind:9} import app + first request  {med[kind] * 1e3:7.1f} ms  (import {imp[kind] * 1e3:6.1f} ms)"
              f"  ratio {result['first_request_ratio'][kind]:.3f}")
    print(f"  baseline  {BASELINE_IMPORT} + client + GetItem  {med['baseline'] * 1e3:7.1f} ms"
          f"  (import {imp['baseline'] * 1e3:6.1f} ms)")
    print(f"  worst: {result['worst']} {result['first_request_ratio_max']:.3f}; budget <= {BUDGET} for every kind;"
          f" import alone {result['import_ratio']:.3f} (no budget)")
    xray = {kind: n for kind, n in result["xray"].items() if n and kind != "schedule"}
    if xray:
        print(f"X-RAY SDK IMPORTED by the API's first request: {xray}")
    over = result["first_request_ratio_max"] > BUDGET or bool(xray)
    if result["importtime"]:
        print(f"OVER BUDGET. Costliest imports under the {result['worst']} first request (-X importtime, cumulative):")
        for cumulative, self_us, name in costliest_imports(result["importtime"]):
            print(f"  {cumulative / 1e3:8.1f} ms  (self {self_us / 1e3:6.1f} ms)  {name}")
    print(json.dumps({
        "first_request_ratio_max": round(result["first_request_ratio_max"], 3),
        "first_request_ratio": {kind: round(r, 3) for kind, r in result["first_request_ratio"].items()},
        "import_ratio": round(result["import_ratio"], 3),
    }))
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
