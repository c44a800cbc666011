"""The local mail outbox: what moto's SES (in this process) has accepted, newest first.
MyPage's mail waits in the mail queue first: each read drains it (`before_read`), so a
code is there as soon as the request that queued it has answered.

    GET /                 an HTML page a person reads (the 4-digit codes are there)
    GET /messages.json    the same as JSON, for tests
"""

from __future__ import annotations

import html
import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

REGION = "ap-northeast-1"


def messages() -> list[dict]:
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ses.models import ses_backends

    sent = ses_backends[DEFAULT_ACCOUNT_ID][REGION].sent_messages
    return [
        {"to": m.destinations["ToAddresses"], "subject": m.subject, "body": m.body}
        for m in reversed(list(sent))
    ]


class _Handler(BaseHTTPRequestHandler):
    before_read: Callable[[], object] = staticmethod(lambda: None)

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        self.before_read()
        if self.path == "/messages.json":
            self._send(json.dumps(messages(), ensure_ascii=False), "application/json")
        elif self.path == "/":
            rows = "".join(
                f"<article><h2>{html.escape(m['subject'])}</h2><p>宛先: {html.escape(', '.join(m['to']))}</p>"
                f"<pre>{html.escape(m['body'])}</pre></article>"
                for m in messages()
            ) or "<p>まだメールはありません。</p>"
            page = (
                "<!doctype html><html lang='ja'><meta charset='utf-8'>"
                "<meta name='viewport' content='width=device-width,initial-scale=1'>"
                "<title>ローカル送信箱</title><h1>ローカル送信箱（SES の代わり）</h1>" + rows + "</html>"
            )
            self._send(page, "text/html; charset=utf-8")
        else:
            self.send_error(404)

    def _send(self, text: str, content_type: str) -> None:
        body = text.encode()
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args) -> None:
        pass  # the page lists e-mail addresses: keep them out of the console log


def serve(host: str, port: int, before_read: Callable[[], object] | None = None) -> ThreadingHTTPServer:
    handler = type("Handler", (_Handler,), {"before_read": staticmethod(before_read or (lambda: None))})
    server = ThreadingHTTPServer((host, port), handler)
    threading.Thread(target=server.serve_forever, name="outbox", daemon=True).start()
    return server
