"""The resident PWA and its API on one origin, locally: static files from `pwa/` and
`/api/*` proxied to the API (`chalice local`), as CloudFront does in front of S3 and API
Gateway in production. Same origin means the session cookie is first-party and no CORS.

    server = serve("127.0.0.1", 8080, ROOT / "pwa", "http://127.0.0.1:8000")
    server.url            # http://127.0.0.1:8080
    server.shutdown(); server.server_close()

    python -m localdev.web --port 8080 --upstream http://127.0.0.1:8000

Static answers carry a strict CSP, gzip when the client accepts it, and cache headers:
`no-cache` (revalidate by ETag) for everything but the icons, which may be kept 30 days.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import http.client
import json
import mimetypes
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

ROOT = Path(__file__).resolve().parent.parent

TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json; charset=utf-8",
    ".webmanifest": "application/manifest+json; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".txt": "text/plain; charset=utf-8",
}
COMPRESSIBLE = ("text/", "application/json", "application/manifest+json", "image/svg+xml")

CSP = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self'",
    "connect-src 'self'",
    "manifest-src 'self'",
    "worker-src 'self'",
    "font-src 'none'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
}
ICON_CACHE = "public, max-age=2592000"  # 30 days: rename an icon when it changes

# Request headers the proxy passes to the API (everything else stays here).
FORWARD = ("content-type", "cookie", "x-csrf-token", "accept", "accept-language", "user-agent", "x-request-id",
           # a terminal's RFC 9421 signature and what it covers
           "signature", "signature-input", "content-digest", "date")
# Hop-by-hop and framing headers never copied from the API's answer.
HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-authenticate",
       "content-length", "server", "date"}
UPSTREAM_TIMEOUT_S = 30
UNAVAILABLE = "サーバーに接続できません。しばらくしてからもう一度お試しください。"


class StaticFile:
    """One file's bytes, ETag and gzip form, read once and kept while its mtime holds."""

    def __init__(self, path: Path) -> None:
        stat = path.stat()
        self.mtime_ns = stat.st_mtime_ns
        self.body = path.read_bytes()
        self.type = TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        # Weak: the gzip and the identity forms share it.
        self.etag = 'W/"' + hashlib.sha256(self.body).hexdigest()[:20] + '"'
        compressible = self.type.startswith(COMPRESSIBLE) and len(self.body) > 256
        self.gzipped = gzip.compress(self.body, 9, mtime=0) if compressible else None


class WebServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr: tuple[str, int], pwa_dir: Path, upstream: str) -> None:
        super().__init__(addr, Handler)
        self.pwa_dir = Path(pwa_dir).resolve()
        up = urlsplit(upstream)
        if up.scheme != "http" or not up.hostname:
            raise ValueError(f"upstream must be an http:// URL, not {upstream!r}")
        self.upstream_host, self.upstream_port = up.hostname, up.port or 80
        self.quiet = True
        self._files: dict[Path, StaticFile] = {}
        self._files_lock = threading.Lock()

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def static(self, path: Path) -> StaticFile:
        mtime = path.stat().st_mtime_ns
        with self._files_lock:
            cached = self._files.get(path)
            if cached is None or cached.mtime_ns != mtime:
                cached = self._files[path] = StaticFile(path)
            return cached


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: every answer has a Content-Length
    server: WebServer

    def version_string(self) -> str:
        return "chiiki-web"

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib name
        if not self.server.quiet:
            super().log_message(format, *args)

    def do_GET(self) -> None:
        self._dispatch()

    def do_HEAD(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        path = urlsplit(self.path).path
        if path == "/api" or path.startswith("/api/"):
            self._proxy()
        elif self.command in ("GET", "HEAD"):
            self._static(path)
        else:
            self._plain(405, "method not allowed", {"Allow": "GET, HEAD"})

    # -- static files -----------------------------------------------------------------
    def _static(self, url_path: str) -> None:
        rel = unquote(url_path).lstrip("/")
        if rel == "" or rel.endswith("/"):
            rel += "index.html"
        root = self.server.pwa_dir
        target = (root / rel).resolve()
        hidden = target.is_relative_to(root) and any(p.startswith(".") for p in target.relative_to(root).parts)
        if not target.is_relative_to(root) or hidden or not target.is_file():
            self._plain(404, "not found")
            return
        f = self.server.static(target)
        headers = dict(SECURITY_HEADERS)
        headers["Content-Type"] = f.type
        headers["ETag"] = f.etag
        headers["Cache-Control"] = ICON_CACHE if f.type.startswith("image/") else "no-cache"
        if f.gzipped is not None:
            headers["Vary"] = "Accept-Encoding"
        if self.headers.get("If-None-Match") == f.etag:
            self._answer(304, headers, b"")
            return
        body = f.body
        if f.gzipped is not None and _accepts_gzip(self.headers.get("Accept-Encoding", "")):
            body = f.gzipped
            headers["Content-Encoding"] = "gzip"
        self._answer(200, headers, body)

    # -- the API ----------------------------------------------------------------------
    def _proxy(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        headers = {name: value for name in FORWARD if (value := self.headers.get(name)) is not None}
        headers["Host"] = f"{self.server.upstream_host}:{self.server.upstream_port}"
        headers["X-Forwarded-For"] = self.client_address[0]
        headers["X-Forwarded-Proto"] = "http"
        headers["X-Forwarded-Host"] = self.headers.get("Host", "")
        conn = http.client.HTTPConnection(self.server.upstream_host, self.server.upstream_port,
                                          timeout=UPSTREAM_TIMEOUT_S)
        try:
            conn.request(self.command, self.path, body=body, headers=headers)
            upstream = conn.getresponse()
            data = upstream.read()
            out = [(k, v) for k, v in upstream.getheaders() if k.lower() not in HOP]
        except (OSError, http.client.HTTPException):
            msg = {"code": "api_unavailable", "message": UNAVAILABLE}
            self._answer(502, {"Content-Type": "application/json; charset=utf-8", "Cache-Control": "no-store"},
                         json.dumps(msg, ensure_ascii=False).encode())
            return
        finally:
            conn.close()
        names = {k.lower() for k, _ in out}
        if "cache-control" not in names:
            out.append(("Cache-Control", "no-store"))
        if "x-content-type-options" not in names:
            out.append(("X-Content-Type-Options", "nosniff"))
        self._answer(upstream.status, out, data, reason=upstream.reason)

    # -- writing ----------------------------------------------------------------------
    def _plain(self, status: int, text: str, extra: dict | None = None) -> None:
        headers = {**SECURITY_HEADERS, "Content-Type": "text/plain; charset=utf-8", "Cache-Control": "no-store",
                   **(extra or {})}
        self._answer(status, headers, text.encode())

    def _answer(self, status: int, headers: dict | list, body: bytes, reason: str | None = None) -> None:
        self.send_response(status, reason)
        for name, value in headers.items() if isinstance(headers, dict) else headers:
            self.send_header(name, value)
        if status != 304 and not (100 <= status < 200) and status != 204:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD" and status not in (204, 304):
            self.wfile.write(body)


def _accepts_gzip(accept_encoding: str) -> bool:
    for item in accept_encoding.split(","):
        name, _, params = item.strip().partition(";")
        if name.strip().lower() in ("gzip", "*"):
            return params.replace(" ", "") not in ("q=0", "q=0.0", "q=0.00", "q=0.000")
    return False


def serve(host: str, port: int, pwa_dir: Path | str, upstream: str) -> WebServer:
    """Start the server in a daemon thread and return it (port 0 picks a free port: read
    `server.url`). Stop it with `server.shutdown(); server.server_close()`."""
    server = WebServer((host, port), Path(pwa_dir), upstream)
    threading.Thread(target=server.serve_forever, name=f"web-{server.server_address[1]}", daemon=True).start()
    return server


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve pwa/ and proxy /api/* to the API, on one origin.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--pwa-dir", default=str(ROOT / "pwa"))
    parser.add_argument("--upstream", default="http://127.0.0.1:8000", help="the API (chalice local)")
    args = parser.parse_args()
    server = serve(args.host, args.port, args.pwa_dir, args.upstream)
    server.quiet = False
    print(f"MyPage on {server.url}/  (API proxied to {args.upstream})", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.shutdown()
        server.server_close()


if __name__ == "__main__":
    main()
