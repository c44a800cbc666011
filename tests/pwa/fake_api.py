"""A small in-memory fake of the MyPage API contract (`/api/mypage/v1/*`), for trying the
PWA before the backend exists, for the PWA tests and for the Lighthouse benchmark.

    server = start(port=0)            # a ThreadingHTTPServer in a daemon thread
    server.url                        # http://127.0.0.1:<port>
    server.shutdown(); server.server_close()

    python -m tests.pwa.fake_api --port 8000   # then localdev.web in front of it

One member exists: demo@example.jp / niimi-demo-2026, with the two demo cards linked.
Every e-mailed code is 1234. Dates are relative to today in Asia/Tokyo, so the
"expiring within 30 days" highlight always has something to show. Nothing here checks
the real rules of the ledger: it only speaks the contract.
"""

from __future__ import annotations

import argparse
import calendar
import json
import secrets
import threading
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

JST = ZoneInfo("Asia/Tokyo")
PREFIX = "/api/mypage/v1"
DEMO_EMAIL = "demo@example.jp"
DEMO_PASSWORD = "niimi-demo-2026"
CODE = "1234"
PAGE = 10
COOKIE = "session"


def _add_months(d: date, months: int) -> date:
    """Civil Code §143 with the first day counted (SPEC §5.2)."""
    y, m = divmod(d.month - 1 + months, 12)
    y, m = d.year + y, m + 1
    last = calendar.monthrange(y, m)[1]
    if d.day <= last:
        return date(y, m, d.day) - timedelta(days=1)
    return date(y, m, last)


def _mask(number: str) -> str:
    return number[:2] + "•" * 12 + number[-3:]


@dataclass
class Card:
    card_id: str
    number: str
    birth_date: str
    lots: list[dict] = field(default_factory=list)
    history: list[dict] = field(default_factory=list)

    def live_lots(self, today: date) -> list[dict]:
        return [lot for lot in self.lots if lot["points"] > 0 and lot["expires_on"] >= today.isoformat()]

    def balance(self, today: date) -> int:
        return sum(lot["points"] for lot in self.live_lots(today))

    def expiring(self, today: date) -> dict:
        until = (today + timedelta(days=30)).isoformat()
        pts = sum(lot["points"] for lot in self.live_lots(today) if lot["expires_on"] <= until)
        return {"points": pts, "until": until}


@dataclass
class Member:
    email: str
    password: str
    card_ids: list[str] = field(default_factory=list)
    expiry_reminders: bool = True


def _demo_cards(today: date) -> dict[str, Card]:
    def at(d: date, hh: int, mm: int) -> str:
        return datetime.combine(d, time(hh, mm), JST).astimezone(timezone.utc).isoformat().replace("+00:00", "Z")

    a = Card("c1", "JW010000000000001", "1985-04-01")
    grants = [
        (today - timedelta(days=165), 5000, "initial", "初回付与（カード発行）", 5000 - 3200 - 800),
        (today - timedelta(days=40), 1234, "rebate", "ICOCA電子マネー利用の還元", 1234),
        (today - timedelta(days=12), 500, "event", "イベント参加（新見市健康ウォーク）", 500),
    ]
    for d, pts, src, label, remaining in grants:
        a.lots.append({"points": remaining, "expires_on": _add_months(d, 6).isoformat(), "source": src})
        a.history.append({"at": at(d, 9, 0), "day": d.isoformat(), "kind": "grant", "points": pts, "label": label})
    stores = ["まちなか食堂", "新見駅前ベーカリー", "ふれあい商店", "新見ドラッグ", "ひまわり書店"]
    for i in range(22):
        d = today - timedelta(days=150 - i * 6)
        pts = -(50 + (i * 37) % 150)
        a.history.append({"at": at(d, 11 + i % 7, (i * 13) % 60), "day": d.isoformat(), "kind": "spend",
                          "points": pts, "label": f"お支払い（{stores[i % len(stores)]}）"})
    # The spends add up to what the initial lot lost (4,000 pt).
    spent = -sum(e["points"] for e in a.history if e["kind"] == "spend")
    a.history.append({"at": at(today - timedelta(days=2), 15, 30), "day": (today - timedelta(days=2)).isoformat(),
                      "kind": "spend", "points": spent - 4000, "label": "お支払い（まちなか食堂）"})
    a.history.sort(key=lambda e: e["at"], reverse=True)

    b = Card("c2", "JW010000000000002", "1970-11-30")
    d = today - timedelta(days=175)
    b.lots.append({"points": 1000, "expires_on": _add_months(d, 6).isoformat(), "source": "initial"})
    b.history.append({"at": at(d, 9, 0), "day": d.isoformat(), "kind": "grant", "points": 5000,
                      "label": "初回付与（カード発行）"})
    b.history.append({"at": at(d + timedelta(days=30), 10, 5), "day": (d + timedelta(days=30)).isoformat(),
                      "kind": "spend", "points": -4000, "label": "お支払い（ふれあい商店）"})
    b.history.sort(key=lambda e: e["at"], reverse=True)

    c = Card("c3", "JW010000000000003", "2001-02-03")
    d = today - timedelta(days=3)
    c.lots.append({"points": 5000, "expires_on": _add_months(d, 6).isoformat(), "source": "initial"})
    c.history.append({"at": at(d, 9, 0), "day": d.isoformat(), "kind": "grant", "points": 5000,
                      "label": "初回付与（カード発行）"})
    return {card.card_id: card for card in (a, b, c)}


STORES = [
    {"name": "まちなか食堂", "area": "新見地域", "category": "飲食"},
    {"name": "新見駅前ベーカリー", "area": "新見地域", "category": "飲食"},
    {"name": "ふれあい商店", "area": "大佐地域", "category": "食料品"},
    {"name": "新見ドラッグ", "area": "新見地域", "category": "医薬品・日用品"},
    {"name": "ひまわり書店", "area": "新見地域", "category": "書籍・文具"},
    {"name": "神郷みどり農園直売所", "area": "神郷地域", "category": "食料品"},
    {"name": "哲多ガソリンスタンド", "area": "哲多地域", "category": "燃料"},
    {"name": "哲西理容室", "area": "哲西地域", "category": "理美容"},
    {"name": "千屋牛のお店 ちや", "area": "新見地域", "category": "食料品"},
    {"name": "新見電器", "area": "新見地域", "category": "家電"},
]


class FakeMyPage:
    """The state: members, cards, sessions and pending codes. One lock guards it all."""

    def __init__(self, today: date | None = None) -> None:
        self.today = today or datetime.now(JST).date()
        self.lock = threading.Lock()
        self.cards = _demo_cards(self.today)
        self.members = {DEMO_EMAIL: Member(DEMO_EMAIL, DEMO_PASSWORD, ["c1", "c2"])}
        self.sessions: dict[str, tuple[str, str]] = {}  # session id -> (email, csrf)
        self.signup_tokens: dict[str, str] = {}
        self.login_failures: dict[str, int] = {}

    def new_session(self, email: str) -> tuple[str, str]:
        sid, csrf = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        self.sessions[sid] = (email, csrf)
        return sid, csrf


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


NOT_LOGGED_IN = ApiError(401, "not_logged_in", "ログインしてください。")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: FakeServer

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib name
        if self.server.verbose:
            super().log_message(format, *args)

    # -- plumbing ---------------------------------------------------------------------
    def _send(self, status: int, body: dict | None = None, cookies: list[str] = ()) -> None:
        data = b"" if body is None else json.dumps(body, ensure_ascii=False).encode()
        self.send_response(status)
        if body is not None:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        for c in cookies:
            self.send_header("Set-Cookie", c)
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> dict:
        n = int(self.headers.get("Content-Length") or 0)
        if not n:
            return {}
        try:
            body = json.loads(self.rfile.read(n))
        except ValueError as exc:
            raise ApiError(400, "invalid_request", "リクエストの形式が正しくありません。") from exc
        if not isinstance(body, dict):
            raise ApiError(400, "invalid_request", "リクエストの形式が正しくありません。")
        return body

    def _session(self, csrf: bool) -> tuple[str, Member]:
        sid = None
        for part in (self.headers.get("Cookie") or "").split(";"):
            name, _, value = part.strip().partition("=")
            if name == COOKIE:
                sid = value
        state = self.server.state
        if sid not in state.sessions:
            raise NOT_LOGGED_IN
        email, token = state.sessions[sid]
        if csrf and self.headers.get("X-CSRF-Token") != token:
            raise ApiError(403, "csrf_failed", "画面を再読み込みしてから、もう一度お試しください。")
        return sid, state.members[email]

    def _cookie(self, sid: str, max_age: int = 86400) -> str:
        return f"{COOKIE}={sid}; Path=/api/mypage/; HttpOnly; SameSite=Strict; Max-Age={max_age}"

    def _handle(self, method: str) -> None:
        url = urlsplit(self.path)
        if not url.path.startswith(PREFIX + "/"):
            self._send(404, {"code": "not_found", "message": "見つかりません。"})
            return
        parts = url.path[len(PREFIX) + 1:].split("/")
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        if self.server.delay:
            threading.Event().wait(self.server.delay)
        try:
            with self.server.state.lock:
                self._route(method, parts, query)
        except ApiError as exc:
            self._send(exc.status, {"code": exc.code, "message": exc.message})

    do_GET = lambda self: self._handle("GET")  # noqa: E731
    do_POST = lambda self: self._handle("POST")  # noqa: E731
    do_PUT = lambda self: self._handle("PUT")  # noqa: E731
    do_DELETE = lambda self: self._handle("DELETE")  # noqa: E731

    # -- the contract -----------------------------------------------------------------
    def _route(self, method: str, parts: list[str], query: dict) -> None:  # noqa: C901 - a routing table
        st = self.server.state
        today = st.today
        route = (method, *parts)
        if route == ("POST", "signup", "start") or route == ("POST", "password-reset", "start"):
            self._body()
            self._send(202, {"status": "sent"})
        elif route == ("POST", "signup", "verify"):
            body = self._body()
            if body.get("code") != CODE:
                raise ApiError(400, "code_invalid", "確認コードが正しくありません。あと4回入力できます。")
            token = secrets.token_urlsafe(16)
            st.signup_tokens[token] = str(body.get("email", ""))
            self._send(200, {"signup_token": token})
        elif route == ("POST", "signup", "complete"):
            body = self._body()
            email = st.signup_tokens.pop(str(body.get("signup_token")), None)
            if email is None:
                raise ApiError(400, "signup_expired", "登録の有効期限が切れました。最初からやり直してください。")
            card = self._find_card(body)
            if email in st.members:
                raise ApiError(409, "email_taken", "このメールアドレスはすでに登録されています。")
            st.members[email] = Member(email, str(body.get("password")), [card.card_id])
            sid, csrf = st.new_session(email)
            self._send(201, {"csrf_token": csrf}, [self._cookie(sid)])
        elif route == ("POST", "login"):
            body = self._body()
            email = str(body.get("email", ""))
            if st.login_failures.get(email, 0) >= 5:
                raise ApiError(429, "too_many_attempts", "ログインの失敗が続いたため、15分後にもう一度お試しください。")
            member = st.members.get(email)
            if member is None or member.password != body.get("password"):
                st.login_failures[email] = st.login_failures.get(email, 0) + 1
                raise ApiError(401, "login_failed", "メールアドレスまたはパスワードが違います。")
            sid, csrf = st.new_session(email)
            self._send(200, {"csrf_token": csrf}, [self._cookie(sid)])
        elif route == ("POST", "password-reset", "complete"):
            body = self._body()
            member = st.members.get(str(body.get("email")))
            if member is None or body.get("code") != CODE:
                raise ApiError(400, "code_invalid", "確認コードが正しくありません。")
            member.password = str(body.get("new_password"))
            self._send(204)
        elif route == ("GET", "session"):
            sid, m = self._session(csrf=False)
            self._send(200, {"csrf_token": st.sessions[sid][1], "email": m.email, "point_name": "にーみんポイント",
                             "expiry_reminders": m.expiry_reminders})
        elif route == ("POST", "logout"):
            sid, _ = self._session(csrf=True)
            del st.sessions[sid]
            self._send(204, cookies=[self._cookie("", 0)])
        elif route == ("GET", "cards"):
            _, m = self._session(csrf=False)
            cards = [st.cards[c] for c in m.card_ids]
            self._send(200, {"cards": [{"card_id": c.card_id, "card_number_masked": _mask(c.number),
                                        "balance": c.balance(today), "expiring_soon": c.expiring(today)["points"]}
                                       for c in cards]})
        elif route == ("POST", "cards"):
            _, m = self._session(csrf=True)
            card = self._find_card(self._body())
            if card.card_id not in m.card_ids:
                m.card_ids.append(card.card_id)
            self._send(201, {"card_id": card.card_id})
        elif method in ("GET", "DELETE") and parts[0] == "cards" and len(parts) in (2, 3):
            _, m = self._session(csrf=method != "GET")
            if parts[1] not in m.card_ids:
                raise ApiError(404, "card_not_found", "このカードは登録されていません。")
            card = st.cards[parts[1]]
            if method == "DELETE" and len(parts) == 2:
                m.card_ids.remove(card.card_id)
                self._send(204)
            elif method == "GET" and len(parts) == 2:
                self._send(200, {"card_id": card.card_id, "card_number_masked": _mask(card.number),
                                 "balance": card.balance(today), "as_of": today.isoformat(),
                                 "lots": sorted(card.live_lots(today), key=lambda lot: lot["expires_on"]),
                                 "expiring_soon": card.expiring(today)})
            elif method == "GET" and parts[2] == "history":
                start = int(query.get("cursor") or 0)
                page = card.history[start:start + PAGE]
                more = start + PAGE < len(card.history)
                self._send(200, {"entries": page, "next_cursor": str(start + PAGE) if more else None})
            else:
                raise ApiError(404, "not_found", "見つかりません。")
        elif route == ("GET", "stores"):
            self._session(csrf=False)
            self._send(200, {"stores": STORES})
        elif route == ("PUT", "preferences"):
            _, m = self._session(csrf=True)
            m.expiry_reminders = bool(self._body().get("expiry_reminders"))
            self._send(200, {"expiry_reminders": m.expiry_reminders})
        elif route == ("POST", "password"):
            _, m = self._session(csrf=True)
            body = self._body()
            if body.get("current_password") != m.password:
                raise ApiError(400, "password_wrong", "現在のパスワードが違います。")
            m.password = str(body.get("new_password"))
            self._send(204)
        elif route == ("POST", "withdraw"):
            sid, m = self._session(csrf=True)
            if self._body().get("password") != m.password:
                raise ApiError(400, "password_wrong", "パスワードが違います。")
            del st.members[m.email]
            for s in [s for s, (e, _) in st.sessions.items() if e == m.email]:
                del st.sessions[s]
            self._send(204, cookies=[self._cookie("", 0)])
        else:
            raise ApiError(404, "not_found", "見つかりません。")

    def _find_card(self, body: dict) -> Card:
        for card in self.server.state.cards.values():
            if card.number == body.get("card_number") and card.birth_date == body.get("birth_date"):
                return card
        raise ApiError(400, "card_mismatch", "カード番号または生年月日が正しくありません。")


class FakeServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, addr: tuple[str, int], state: FakeMyPage, delay: float = 0.0, verbose: bool = False) -> None:
        super().__init__(addr, Handler)
        self.state, self.delay, self.verbose = state, delay, verbose

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"


def start(host: str = "127.0.0.1", port: int = 0, *, delay: float = 0.0, verbose: bool = False,
          today: date | None = None) -> FakeServer:
    server = FakeServer((host, port), FakeMyPage(today), delay, verbose)
    threading.Thread(target=server.serve_forever, name="fake-mypage-api", daemon=True).start()
    return server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--delay", type=float, default=0.0, help="seconds added to every answer")
    args = parser.parse_args()
    server = start(port=args.port, delay=args.delay, verbose=True)
    print(f"fake MyPage API on {server.url}{PREFIX}  ({DEMO_EMAIL} / {DEMO_PASSWORD}, codes {CODE})", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.shutdown()


if __name__ == "__main__":
    main()
