"""Cold `import app` against importing its heavy dependencies alone.

Budget (DESIGN.md, Performance budgets): a fresh process's `import app` takes at most
1.3x a fresh process's `import chalice, boto3, pynamodb.models, aws_lambda_powertools`.
Each child times its own import with time.perf_counter (interpreter start-up is not
counted); the kinds of child alternate, and the medians are compared.

Bytecode is controlled, whatever PYTHONDONTWRITEBYTECODE says and whatever
__pycache__ directories exist: every child uses a private PYTHONPYCACHEPREFIX in a
temporary directory (the repository gets no __pycache__). Two app figures:

  * app from source (the budget figure): the dependencies load from bytecode, the
    app's own modules (app.py, chalicelib) are compiled from source, as in a Lambda
    package that ships no .pyc for them (Lambda cannot write any);
  * app from bytecode: everything from bytecode.

    python bench/coldstart.py            # 11 runs each
    python bench/coldstart.py --quick    # or BENCH_QUICK=1: 7 runs each

Prints its figures, then as the last line one JSON object. Exits 1 when over budget;
then it also prints the imports `python -X importtime -c "import app"` finds costliest.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

APP = "import app"
BASELINE = "import chalice, boto3, pynamodb.models, aws_lambda_powertools"
BUDGET = 1.3

CHILD = """\
import time
_start = time.perf_counter()
{statement}
print(repr(time.perf_counter() - _start))
"""


def _env(pycache: Path, *, write: bool) -> dict[str, str]:
    env = dict(os.environ)
    # Whatever the import might look at: never real AWS, never a local endpoint.
    env.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_SESSION_TOKEN="testing",
        AWS_DEFAULT_REGION="ap-northeast-1",
        AWS_REGION="ap-northeast-1",
        PYTHONPYCACHEPREFIX=str(pycache),
    )
    for name in ("CHIIKI_DYNAMODB_ENDPOINT", "PYTHONPROFILEIMPORTTIME", "PYTHONDONTWRITEBYTECODE"):
        env.pop(name, None)
    if not write:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def import_seconds(statement: str, env: dict[str, str]) -> float:
    """Seconds a fresh interpreter, started in the repo root, takes to run `statement`."""
    out = subprocess.run(
        [sys.executable, "-c", CHILD.format(statement=statement)],
        cwd=ROOT, env=env, capture_output=True, text=True, check=True,
    )
    return float(out.stdout.strip().splitlines()[-1])


def _drop_app_bytecode(pycache: Path) -> None:
    """Remove the bytecode of the repository's own modules from a pycache prefix,
    keeping that of anything installed (the venv may live inside the repository)."""
    mirror = pycache / ROOT.relative_to(ROOT.anchor)
    if not mirror.is_dir():
        return
    installed = [Path(p).resolve() for p in {sys.prefix, sys.base_prefix}]
    for child in mirror.iterdir():
        source = ROOT / child.name
        if any(source == p or source in p.parents for p in installed):
            continue
        if child.is_dir():
            shutil.rmtree(child)
        else:
            child.unlink()


def measure(runs: int) -> dict:
    """Medians of `runs` alternating fresh-process imports: the app from source, the
    app from bytecode, and the baseline."""
    with tempfile.TemporaryDirectory(prefix="chiiki-coldstart-") as tmp:
        all_bytecode, deps_bytecode = Path(tmp, "all"), Path(tmp, "deps")
        writing = {"all": _env(all_bytecode, write=True), "deps": _env(deps_bytecode, write=True)}
        for env in writing.values():  # compile everything once, and warm the file cache
            import_seconds(APP, env)
            import_seconds(BASELINE, env)
        _drop_app_bytecode(deps_bytecode)
        kinds = {
            "app_source": (APP, _env(deps_bytecode, write=False)),
            "app_bytecode": (APP, _env(all_bytecode, write=False)),
            "baseline": (BASELINE, _env(all_bytecode, write=False)),
        }
        samples: dict[str, list[float]] = {name: [] for name in kinds}
        names = list(kinds)
        for i in range(runs):
            for name in names[i % 3:] + names[: i % 3]:  # rotate who goes first
                statement, env = kinds[name]
                samples[name].append(import_seconds(statement, env))
    med = {name: statistics.median(values) for name, values in samples.items()}
    return {
        "runs": runs,
        "median_s": med,
        "import_ratio": med["app_source"] / med["baseline"],
        "import_ratio_bytecode": med["app_bytecode"] / med["baseline"],
    }


def costliest_imports(statement: str = APP, top: int = 15) -> list[tuple[int, int, str]]:
    """(cumulative µs, self µs, module) of the costliest imports, from -X importtime
    (the app's own modules compiled from source, as in the budget figure)."""
    with tempfile.TemporaryDirectory(prefix="chiiki-importtime-") as tmp:
        env = _env(Path(tmp), write=True)
        import_seconds(statement, env)
        _drop_app_bytecode(Path(tmp))
        env = _env(Path(tmp), write=False)
        out = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", statement],
            cwd=ROOT, env=env, capture_output=True, text=True, check=True,
        )
    rows = []
    for line in out.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, cumulative, name = (part.strip() for part in line.removeprefix("import time:").split("|"))
        rows.append((int(cumulative), int(self_us), name))
    return sorted(rows, reverse=True)[:top]


def main(argv: list[str]) -> int:
    quick = "--quick" in argv or os.environ.get("BENCH_QUICK", "") not in ("", "0")
    result = measure(7 if quick else 11)
    med = result["median_s"]
    print(f"Fresh-process import time, median of {result['runs']} interleaved runs each:")
    print(f"  {APP + '  (app modules compiled from source)':<66} {med['app_source'] * 1e3:7.1f} ms")
    print(f"  {APP + '  (everything from bytecode)':<66} {med['app_bytecode'] * 1e3:7.1f} ms")
    print(f"  {BASELINE:<66} {med['baseline'] * 1e3:7.1f} ms")
    print(f"  ratio {result['import_ratio']:.3f} from source, {result['import_ratio_bytecode']:.3f} from bytecode;"
          f" budget <= {BUDGET} (on the from-source figure)" + ("  (quick mode)" if quick else ""))
    over = result["import_ratio"] > BUDGET
    if over:
        print(f"OVER BUDGET. Costliest imports under `{APP}` (python -X importtime, cumulative):")
        for cumulative, self_us, name in costliest_imports():
            print(f"  {cumulative / 1e3:8.1f} ms  (self {self_us / 1e3:6.1f} ms)  {name}")
    print(json.dumps({"import_ratio": round(result["import_ratio"], 3)}))
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
