"""The checks every request passes before a route sees it, in this order: the Host header
(bound to loopback), the token (`auth`), a JSON content type on a POST, and the body's
size. Each refusal is the JSON of `problems`, sent before the body is read."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from localrec.serve.auth import bearer_matches, host_is_local
from localrec.serve.problems import error_response
from localrec.serve.schemas import MAX_BODY_BYTES

__all__ = ["WRITE_PATHS", "Guard", "Policy"]

# What changes the database: these always need the token.
WRITE_PATHS = frozenset({"/v1/events", "/v1/forget"})
# The playground's own files: the same for everyone and without any data, so a browser can
# load the page (which then sends the token with the API calls that need it).
_PUBLIC_FILES = frozenset({"/", "/favicon.ico"})


@dataclass(frozen=True)
class Policy:
    token: str
    loopback: bool  # bound to loopback: reads need no token, the Host must be local
    host: str  # the address the server is bound to
    max_body: int = MAX_BODY_BYTES


def _public(path: str) -> bool:
    return path in _PUBLIC_FILES or path.startswith("/static/")


class Guard:
    """ASGI middleware enforcing a `Policy`."""

    def __init__(self, app: ASGIApp, policy: Policy) -> None:
        self.app = app
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        refusal = self._refusal(scope, headers)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        if scope["path"].startswith("/v1/"):
            send = _private(send)
        if scope["method"] not in ("POST", "PUT", "PATCH", "DELETE"):
            await self.app(scope, receive, send)
            return
        body = await self._body(receive, headers)
        if body is None:
            too_big = error_response(
                413, f"the body is larger than {self.policy.max_body} bytes", "body"
            )
            await too_big(scope, receive, send)
            return
        await self.app(scope, _replay(body, receive), send)

    def _refusal(self, scope: Scope, headers: dict[str, str]) -> Response | None:
        path: str = scope["path"]
        policy = self.policy
        if policy.loopback and not host_is_local(headers.get("host"), policy.host):
            return error_response(
                421, f"Host {headers.get('host', '')[:60]!r} is not this machine", "Host"
            )
        needs_token = path in WRITE_PATHS or not (policy.loopback or _public(path))
        if needs_token and not bearer_matches(headers.get("authorization"), policy.token):
            what = "a write" if path in WRITE_PATHS else "every request off loopback"
            return error_response(
                401,
                f"{what} needs the token: send `Authorization: Bearer TOKEN` (the token is "
                "--token, or the file `localrec serve` named when it started)",
                "Authorization",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if scope["method"] == "POST":
            kind = headers.get("content-type", "").split(";")[0].strip().lower()
            if kind != "application/json":
                return error_response(
                    415,
                    f"send the body as application/json, not {kind or 'nothing'!r}",
                    "Content-Type",
                )
        return None

    async def _body(self, receive: Receive, headers: dict[str, str]) -> bytes | None:
        """The whole body, or None when it is larger than the limit (said or found)."""
        limit = self.policy.max_body
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            return None
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)


def _private(send: Send) -> Send:
    """A send that marks the answer as not to be cached: it is about someone's history."""

    async def private(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message["headers"], (b"cache-control", b"no-store")]}
        await send(message)

    return private


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive that gives the body already read, then waits on the real one (for a
    disconnect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
