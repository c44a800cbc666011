"""`make run`: the API on `chalice local`, DynamoDB on an in-process moto server, demo data.

    CHIIKI_API_PORT   (default 8000)  chalice local
    CHIIKI_MOTO_PORT  (default 5005)  moto's server, DynamoDB endpoint

Everything binds 127.0.0.1 and uses fake AWS credentials: nothing reaches AWS.
Ctrl-C (or SIGTERM) stops chalice by its pid, then moto.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import FrameType

from localdev.fake_aws import use_fake_aws

HOST = "127.0.0.1"
REGION = "ap-northeast-1"
STAGE = "dev"
ROOT = Path(__file__).resolve().parent.parent
HEALTH_TIMEOUT_S = 60.0


# urllib honours *_proxy variables too; the health check talks to 127.0.0.1 directly.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def port_from_env(name: str, default: int) -> int:
    value = os.environ.get(name)
    if not value:
        return default
    try:
        return int(value)
    except ValueError as exc:
        raise SystemExit(f"{name}={value!r} is not a port number") from exc


def require_free(port: int, env_name: str) -> None:
    """Fail with a clear message now: moto's server thread would hang start() on a taken port."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers do
        try:
            s.bind((HOST, port))
        except OSError as exc:
            raise SystemExit(f"{HOST}:{port} is in use; set {env_name} to another port") from exc


def stage_table() -> str:
    """`chalice local` sets the stage's environment variables over ours, so the demo
    data must go to the table the stage names."""
    config = json.loads((ROOT / ".chalice" / "config.json").read_text(encoding="utf-8"))
    return config["stages"][STAGE]["environment_variables"]["CHIIKI_TABLE"]


def wait_healthy(url: str, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + HEALTH_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"chalice local exited with code {proc.returncode}")
        try:
            with _DIRECT.open(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass  # not listening yet
        time.sleep(0.2)
    raise SystemExit(f"{url} did not answer within {HEALTH_TIMEOUT_S:.0f} s")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _interrupt(signum: int, frame: FrameType | None) -> None:
    # SIGTERM takes the same clean path as Ctrl-C.
    raise KeyboardInterrupt


def main() -> int:
    api_port = port_from_env("CHIIKI_API_PORT", 8000)
    moto_port = port_from_env("CHIIKI_MOTO_PORT", 5005)
    require_free(api_port, "CHIIKI_API_PORT")
    require_free(moto_port, "CHIIKI_MOTO_PORT")

    use_fake_aws(in_process=False)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one log line per DynamoDB call is noise

    # Imported after the environment is set: nothing may build an AWS client with real credentials.
    from moto.server import ThreadedMotoServer

    from chalicelib.ledger.store import CardStore
    from chalicelib.table import Table
    from localdev.demo import load_demo
    from localdev.moto_serial import serialize_dynamodb

    serialize_dynamodb()  # moto's transactions are not isolated across its request threads otherwise
    moto = ThreadedMotoServer(ip_address=HOST, port=moto_port, verbose=False)
    moto_url = f"http://{HOST}:{moto_port}"
    api_url = f"http://{HOST}:{api_port}"
    signal.signal(signal.SIGTERM, _interrupt)
    chalice: subprocess.Popen | None = None
    moto.start()
    try:
        table = stage_table()
        app_table = Table(table, REGION, host=moto_url)
        app_table.create()
        store = CardStore(app_table)
        cards = load_demo(store)
        print(f"Loaded issuer niimi and {len(cards)} demo cards into {table}:")
        for card in cards:
            print(f"  {card.spec.card_number} ({card.spec.label})")
            for step in card.steps:
                print(f"    {step}")

        env = {**os.environ, "CHIIKI_DYNAMODB_ENDPOINT": moto_url, "CHIIKI_TABLE": table,
               "PYTHONUNBUFFERED": "1"}
        chalice = subprocess.Popen(
            [str(Path(sys.prefix) / "bin" / "chalice"), "local", "--no-autoreload",
             "--host", HOST, "--port", str(api_port), "--stage", STAGE],
            cwd=ROOT,
            env=env,
            # Its own session: Ctrl-C reaches only us, and we stop chalice by pid, without
            # a KeyboardInterrupt traceback from it.
            start_new_session=True,
        )
        wait_healthy(f"{api_url}/api/health", chalice)
        print(
            "\nChiiki Points is running (local, fake AWS, 127.0.0.1 only):\n"
            f"  API            {api_url}/api/health\n"
            f"  issuer         {api_url}/api/issuers/niimi\n"
            f"  DynamoDB       {moto_url}  (moto; table {table}, region {REGION})\n"
            "  demo cards     (issuer niimi; card number + birth date to link on MyPage)",
            flush=True,
        )
        for card in cards:
            s = card.spec
            print(f"    {s.card_number}  born {s.birth_date}  IDm {s.idm}\n      {card.shows}", flush=True)
        print("Stop with Ctrl-C.", flush=True)
        code = chalice.wait()
        print(f"chalice local exited with code {code}", file=sys.stderr)
        return code or 1
    except KeyboardInterrupt:
        return 0
    finally:
        # A second Ctrl-C must not cut the clean-up short.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if chalice is not None:
            stop(chalice)
        moto.stop()
        print("Stopped chalice local and moto.", flush=True)


if __name__ == "__main__":
    sys.exit(main())
