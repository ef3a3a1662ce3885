"""What every request and response of the local server passes through.

- Host check: only the host names the server was started for are answered (loopback names by
  default), so that a web page cannot reach the API through a rebound DNS name.
- Body limit: a body larger than ``max_body`` bytes is refused with 413 before it is parsed.
- Security headers on every response: a Content-Security-Policy that allows nothing from
  outside (the page's own inline script by its hash, inline styles, ``data:`` images, requests
  to the same origin), no framing, no MIME sniffing, no referrer.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

LOOPBACK = ("127.0.0.1", "localhost", "::1")

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


def content_security_policy(page: str) -> str:
    """The policy for ``page``: its inline scripts allowed by hash, nothing from outside."""
    hashes = []
    for body in re.findall(r"<script>(.*?)</script>", page, flags=re.S):
        digest = base64.b64encode(hashlib.sha256(body.encode("utf-8")).digest()).decode()
        hashes.append(f"'sha256-{digest}'")
    scripts = " ".join(hashes) or "'none'"
    return "; ".join(
        [
            "default-src 'none'",
            f"script-src {scripts}",
            "style-src 'unsafe-inline'",
            "img-src data:",
            "connect-src 'self'",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        ]
    )


def host_name(header: str) -> str:
    """The name part of a Host header (``[::1]:8000`` -> ``::1``), lower case."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1 : header.find("]")] if "]" in header else header
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


class Guard:
    """ASGI middleware: host check, body limit and security headers (see the module doc)."""

    def __init__(
        self, app: Any, *, allowed_hosts: Iterable[str], max_body: int, policy: str
    ) -> None:
        self.app = app
        self.allowed = {h.strip().lower().strip("[]") for h in allowed_hosts}
        self.max_body = max_body
        self.headers = [
            (b"content-security-policy", policy.encode()),
            (b"x-content-type-options", b"nosniff"),
            (b"x-frame-options", b"DENY"),
            (b"referrer-policy", b"no-referrer"),
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = answered = False

        async def send_secured(message: Message) -> None:
            nonlocal started
            if answered:  # the guard has answered already: the app's answer is dropped
                return
            if message["type"] == "http.response.start":
                started = True
                names = {k for k, _ in self.headers}
                kept = [(k, v) for k, v in message.get("headers", []) if k.lower() not in names]
                message = {**message, "headers": kept + self.headers}
            await send(message)

        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        host = host_name(headers.get("host", ""))
        if "*" not in self.allowed and host not in self.allowed:
            await _answer(send_secured, 400, f"host {host!r} is not served here; "
                          "start the server with --allowed-host for other names")  # fmt: skip
            return
        length = headers.get("content-length", "")
        if length.isdigit() and int(length) > self.max_body:
            await _answer(send_secured, 413, self._too_large())
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen, answered
            if answered:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body:  # a body without Content-Length that grew too large
                    if not started:
                        await _answer(send_secured, 413, self._too_large())
                    answered = True
                    return {"type": "http.disconnect"}
            return message

        await self.app(scope, counted, send_secured)

    def _too_large(self) -> str:
        return f"the request body is larger than this server takes ({self.max_body} bytes)"


async def _answer(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
