"""The resident PWA without a browser: the manifest and its icons, the JavaScript budget,
index.html's basics, and `localdev.web` serving pwa/ and proxying /api on one origin."""

from __future__ import annotations

import gzip
import http.client
import json
import re
import struct
import threading
from collections.abc import Iterator
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from localdev import web
from tests.pwa import fake_api

PWA = Path(__file__).resolve().parents[2] / "pwa"
JS_BUDGET = 30 * 1024  # DESIGN.md: JS ≤ 30 KB, uncompressed


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path.name} is not a PNG"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


# -- the files --------------------------------------------------------------------------

def test_manifest_makes_the_app_installable():
    manifest = json.loads((PWA / "manifest.webmanifest").read_text(encoding="utf-8"))
    assert manifest["name"] == "にーみんポイント マイページ"
    assert manifest["short_name"] and len(manifest["short_name"]) <= 12
    assert manifest["start_url"] and manifest["display"] == "standalone"
    assert manifest["lang"] == "ja"
    for key in ("theme_color", "background_color"):
        assert re.fullmatch(r"#[0-9a-f]{6}", manifest[key])
    icons = manifest["icons"]
    sizes = {(icon["sizes"], icon.get("purpose", "any")) for icon in icons}
    assert {("192x192", "any"), ("512x512", "any"), ("512x512", "maskable")} <= sizes
    for icon in icons:
        assert icon["type"] == "image/png"
        width, height = (int(n) for n in icon["sizes"].split("x"))
        assert png_size(PWA / icon["src"]) == (width, height), icon["src"]


def test_javascript_stays_within_budget():
    scripts = sorted(PWA.rglob("*.js"))
    assert {p.name for p in scripts} >= {"app.js", "sw.js"}
    total = sum(p.stat().st_size for p in scripts)
    assert total <= JS_BUDGET, f"{total} bytes of JavaScript, budget {JS_BUDGET}"


def test_modules_import_only_files_that_exist():
    for script in PWA.glob("*.js"):
        for target in re.findall(r"""from\s+['"]([^'"]+)['"]""", script.read_text(encoding="utf-8")):
            assert target.startswith("./"), f"{script.name} imports {target}"
            assert (PWA / target).is_file(), f"{script.name} imports missing {target}"


def test_service_worker_caches_files_that_exist():
    sw = (PWA / "sw.js").read_text(encoding="utf-8")
    shell = re.search(r"const SHELL = \[(.*?)\];", sw, re.S).group(1)
    files = re.findall(r"'([^']+)'", shell)
    assert "index.html" in files and "app.js" in files
    for name in files:
        assert name == "./" or (PWA / name).is_file(), name


def test_no_external_requests():
    for path in PWA.rglob("*"):
        if path.suffix in (".html", ".js", ".css", ".webmanifest"):
            text = path.read_text(encoding="utf-8")
            assert not re.search(r"""(https?:)?//[a-z0-9.-]+\.[a-z]{2,}""", text, re.I), path.name
            assert "@import" not in text and "@font-face" not in text, path.name


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.inline_script = False
        self.handlers: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list) -> None:
        attributes = dict(attrs)
        self.tags.append((tag, attributes))
        self.handlers += [name for name in attributes if name.startswith("on")]
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline_script = True


def test_index_html_basics():
    page = _Page()
    page.feed((PWA / "index.html").read_text(encoding="utf-8"))
    tags = page.tags
    assert ("html", {"lang": "ja"}) in tags
    metas = [a for t, a in tags if t == "meta"]
    assert any(a.get("name") == "viewport" and "width=device-width" in a["content"] for a in metas)
    assert not any("user-scalable=no" in a.get("content", "") or "maximum-scale" in a.get("content", "")
                   for a in metas), "people must be able to zoom"
    assert any(t == "link" and a.get("rel") == "manifest" for t, a in tags)
    scripts = [a for t, a in tags if t == "script"]
    assert scripts and all(a.get("src") for a in scripts), "every script is a file (CSP: no inline script)"
    assert not page.inline_script and not page.handlers
    assert [t for t, _ in tags].count("main") == 1
    assert any(a.get("aria-live") for _, a in tags), "a live region for status messages"


# -- localdev.web -----------------------------------------------------------------------

class _Upstream(BaseHTTPRequestHandler):
    """Echoes what reached it, sets two cookies, and answers /api/fail with a JSON error."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def _answer(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path == "/api/empty":
            self.send_response(204)
            self.end_headers()
            return
        status = 401 if self.path == "/api/fail" else 200
        data = json.dumps({
            "method": self.command, "path": self.path, "body": body.decode(),
            "cookie": self.headers.get("Cookie"), "csrf": self.headers.get("X-CSRF-Token"),
            "content_type": self.headers.get("Content-Type"),
            **({"code": "not_logged_in", "message": "ログインしてください。"} if status == 401 else {}),
        }).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Set-Cookie", "session=abc; Path=/; HttpOnly; SameSite=Strict")
        self.send_header("Set-Cookie", "other=1; Path=/")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = _answer


@pytest.fixture(scope="module")
def upstream() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Upstream)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def site(upstream: str) -> Iterator[web.WebServer]:
    server = web.serve("127.0.0.1", 0, PWA, upstream)
    yield server
    server.shutdown()
    server.server_close()


def fetch(server: web.WebServer, method: str, path: str, body: bytes | None = None,
          headers: dict | None = None) -> tuple[int, http.client.HTTPMessage, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        res = conn.getresponse()
        return res.status, res.headers, res.read()
    finally:
        conn.close()


@pytest.mark.parametrize(("path", "content_type"), [
    ("/", "text/html"),
    ("/index.html", "text/html"),
    ("/manifest.webmanifest", "application/manifest+json"),
    ("/sw.js", "text/javascript"),
    ("/app.js", "text/javascript"),
    ("/app.css", "text/css"),
    ("/icons/icon-192.png", "image/png"),
])
def test_static_files_with_their_types(site, path, content_type):
    status, headers, body = fetch(site, "GET", path)
    assert status == 200
    assert headers["Content-Type"].split(";")[0] == content_type
    assert body
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"]


def test_root_is_index_html_with_a_strict_csp(site):
    status, headers, body = fetch(site, "GET", "/")
    assert body == (PWA / "index.html").read_bytes()
    csp = headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert headers["Cache-Control"] == "no-cache"


def test_cache_headers(site):
    assert fetch(site, "GET", "/sw.js")[1]["Cache-Control"] == "no-cache"
    cache = fetch(site, "GET", "/icons/icon-512.png")[1]["Cache-Control"]
    assert int(re.search(r"max-age=(\d+)", cache).group(1)) >= 7 * 86400


def test_gzip_when_accepted_and_etag_revalidation(site):
    status, headers, body = fetch(site, "GET", "/views.js", headers={"Accept-Encoding": "gzip, br"})
    assert headers["Content-Encoding"] == "gzip" and "Accept-Encoding" in headers["Vary"]
    assert gzip.decompress(body) == (PWA / "views.js").read_bytes()
    status, headers, body = fetch(site, "GET", "/views.js")
    assert "Content-Encoding" not in headers and body == (PWA / "views.js").read_bytes()
    status, _, body = fetch(site, "GET", "/views.js", headers={"If-None-Match": headers["ETag"]})
    assert status == 304 and body == b""


@pytest.mark.parametrize("path", ["/nope.js", "/../localdev/web.py", "/%2e%2e/localdev/web.py",
                                  "/icons/../../README.md", "/.hidden"])
def test_unknown_and_outside_paths_are_404(site, path):
    assert fetch(site, "GET", path)[0] == 404


def test_api_is_proxied_with_cookies_and_csrf(site):
    status, headers, body = fetch(site, "POST", "/api/mypage/v1/cards?x=1", body=b'{"a": 1}', headers={
        "Content-Type": "application/json", "Cookie": "session=xyz", "X-CSRF-Token": "tok"})
    assert status == 200
    echoed = json.loads(body)
    assert echoed == {"method": "POST", "path": "/api/mypage/v1/cards?x=1", "body": '{"a": 1}',
                      "cookie": "session=xyz", "csrf": "tok", "content_type": "application/json"}
    assert headers.get_all("Set-Cookie") == ["session=abc; Path=/; HttpOnly; SameSite=Strict", "other=1; Path=/"]
    assert headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_api_methods_pass_through(site, method):
    status, _, body = fetch(site, method, "/api/mypage/v1/cards/c1")
    assert status == 200 and json.loads(body)["method"] == method


def test_api_errors_and_empty_answers_pass_through(site):
    status, _, body = fetch(site, "GET", "/api/fail")
    assert status == 401 and json.loads(body)["code"] == "not_logged_in"
    status, _, body = fetch(site, "POST", "/api/empty")
    assert status == 204 and body == b""


def test_api_down_is_a_json_502():
    server = web.serve("127.0.0.1", 0, PWA, "http://127.0.0.1:9")  # nothing listens on the discard port
    try:
        status, headers, body = fetch(server, "GET", "/api/health")
    finally:
        server.shutdown()
        server.server_close()
    assert status == 502 and headers["Content-Type"].startswith("application/json")
    assert json.loads(body)["code"] == "api_unavailable"


def test_fake_api_speaks_the_contract_through_the_proxy():
    """The fake the Lighthouse bench and the screenshots use, end to end through localdev.web."""
    api = fake_api.start()
    server = web.serve("127.0.0.1", 0, PWA, api.url)
    try:
        status, headers, body = fetch(server, "POST", "/api/mypage/v1/login", json.dumps(
            {"email": fake_api.DEMO_EMAIL, "password": fake_api.DEMO_PASSWORD}).encode(),
            {"Content-Type": "application/json"})
        assert status == 200
        cookie = headers["Set-Cookie"].split(";")[0]
        csrf = json.loads(body)["csrf_token"]
        status, _, body = fetch(server, "GET", "/api/mypage/v1/cards", headers={"Cookie": cookie})
        cards = json.loads(body)["cards"]
        assert status == 200 and cards and cards[0]["card_number_masked"].startswith("JW")
        status, _, body = fetch(server, "GET", f"/api/mypage/v1/cards/{cards[0]['card_id']}",
                                headers={"Cookie": cookie})
        card = json.loads(body)
        assert sum(lot["points"] for lot in card["lots"]) == card["balance"]
        logout = "/api/mypage/v1/logout"
        assert fetch(server, "POST", logout, headers={"Cookie": cookie})[0] == 403  # no CSRF token
        assert fetch(server, "POST", logout, headers={"Cookie": cookie, "X-CSRF-Token": csrf})[0] == 204
        assert fetch(server, "GET", "/api/mypage/v1/cards", headers={"Cookie": cookie})[0] == 401
    finally:
        server.shutdown()
        server.server_close()
        api.shutdown()
        api.server_close()
