"""Starting and stopping `localrec serve`: settings checked, the port bound, the
`Recommender` opened and warmed once, then uvicorn until SIGINT or SIGTERM.

On a signal the server stops accepting connections, lets the requests in flight finish
(each write is one SQLite transaction: stored whole or not at all), then closes the
database once no request holds it.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import re
import socket
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from localrec.errors import ServeError
from localrec.serve.auth import is_loopback, settle_token

__all__ = [
    "DEFAULT_PORT",
    "GRACE_SECONDS",
    "ServeSettings",
    "Server",
    "bind",
    "check_origins",
    "require_extra",
    "url_of",
]

DEFAULT_PORT = 8765
GRACE_SECONDS = 10  # how long requests in flight may take after a signal
_ORIGIN = re.compile(r"https?://[^/\s?#@]+")


def require_extra() -> None:
    """FastAPI and uvicorn are the optional extra `localrec[serve]`."""
    missing = [name for name in ("fastapi", "uvicorn") if find_spec(name) is None]
    if missing:
        raise ServeError(
            f"`localrec serve` needs {' and '.join(missing)}: pip install 'localrec[serve]'"
        )


@dataclass(frozen=True)
class ServeSettings:
    """What `localrec serve` was asked for."""

    db: Path
    pack: Path | None = None
    model: str | None = None
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    token: str | None = None
    cors: tuple[str, ...] = field(default_factory=tuple)
    verbose: bool = False
    version: str = "unknown"  # localrec's (the CLI gives it): /v1/health and the schema say it


def check_origins(origins: tuple[str, ...]) -> tuple[str, ...]:
    for origin in origins:
        if origin in ("*", "null") or not _ORIGIN.fullmatch(origin):
            raise ServeError(
                f"--cors {origin!r}: give one web origin such as http://localhost:3000 "
                "(scheme, host and port; no path, no '*', no 'null')"
            )
    return origins


def bind(host: str, port: int) -> socket.socket:
    if not 0 <= port <= 65535:
        raise ServeError(f"--port {port} is not a port number (0 to 65535)")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ServeError(f"--host {host!r} is not an address of this machine ({exc})") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise ServeError(
            f"cannot listen on {host} port {port} ({exc.strerror or exc}); another process "
            "may use it: choose another with --port"
        ) from None
    sock.set_inheritable(True)
    return sock


def url_of(host: str, sock: socket.socket) -> str:
    """The URL of the server listening on `sock`, bound to `host`."""
    port = int(sock.getsockname()[1])
    return f"http://{f'[{host}]' if ':' in host else host}:{port}/"


class Server:
    """A bound, loaded server; `run()` serves until a signal or `stop()`."""

    def __init__(
        self, settings: ServeSettings, sock: socket.socket | None = None, *, handed: bool = False
    ) -> None:
        """`sock`: a socket already bound and listening; by default the server binds its
        own. With `handed` (a worker of `Workers`), `sock` is instead the channel on which
        the parent passes each connection it accepted, and the server listens on nothing."""
        require_extra()
        import uvicorn

        from localrec.recommend.recommender import Recommender
        from localrec.serve.app import create_app
        from localrec.serve.guard import Policy
        from localrec.serve.service import Service

        self.settings = settings
        self.handed = handed
        self._loop: asyncio.AbstractEventLoop | None = None
        self.loopback = is_loopback(settings.host)
        cors = check_origins(settings.cors)
        self.token, self.token_file = settle_token(settings.token)
        self.socket = sock if sock is not None else bind(settings.host, settings.port)
        try:
            recommender = Recommender(
                settings.db, settings.model, pack=settings.pack, verbose=settings.verbose
            )
        except BaseException:
            self.socket.close()
            raise
        self.service = Service(
            recommender,
            token_for="writes" if self.loopback else "everything",
            version=settings.version,
        )
        try:
            self.service.warm_up()
        except BaseException:
            self.close()
            raise
        policy = Policy(self.token, self.loopback, settings.host)
        app = create_app(self.service, policy, cors, inline=handed)
        app.router.lifespan_context = self._lifespan
        config = uvicorn.Config(
            app,
            log_level="info" if settings.verbose else "warning",
            access_log=settings.verbose,
            timeout_graceful_shutdown=GRACE_SECONDS,
            server_header=False,
        )
        self._uvicorn = uvicorn.Server(config)
        # What is loaded now (the pack's rows, the model, FastAPI's routes: ~90k objects)
        # lives as long as the server. Left to the cyclic collector, each full pass walks
        # them all (57 ms with the Food-Kitchen pack), in the middle of some request;
        # frozen, they are never walked again. Serial requests: p50 6.8-7.4 against
        # 8.2-11.0 ms, p99 13.5-16.0 against 16.1-22.4 ms (4 runs each, load ~5).
        gc.collect()
        gc.freeze()

    @contextlib.asynccontextmanager
    async def _lifespan(self, _: Any) -> AsyncIterator[None]:
        self._loop = asyncio.get_running_loop()
        yield
        self.close()  # after the requests in flight: uvicorn waited for them

    @property
    def url(self) -> str:
        return url_of(self.settings.host, self.socket)

    def run(self) -> None:
        """Serve until SIGINT/SIGTERM (in the main thread) or `stop()`."""
        try:
            if self.handed:
                adopt = threading.Thread(target=self._adopt, daemon=True, name="localrec-adopt")
                adopt.start()
                self._uvicorn.run(sockets=[])
            else:
                self._uvicorn.run(sockets=[self.socket])
        finally:
            self.close()

    def _adopt(self) -> None:
        """Serve each connection the parent passes on the channel, as uvicorn serves one it
        accepted itself, until the channel closes."""
        server = self._uvicorn
        while not server.started:  # the app and its lifespan are up before any request
            if server.should_exit:
                return
            time.sleep(0.01)
        config, loop = server.config, self._loop
        assert loop is not None

        def protocol() -> asyncio.Protocol:
            made: asyncio.Protocol = config.http_protocol_class(  # type: ignore[call-arg]
                config=config, server_state=server.server_state, app_state=server.lifespan.state
            )
            return made

        while True:
            try:
                _, fds, _, _ = socket.recv_fds(self.socket, 1, 1)
            except OSError:
                return  # closed: the server is stopping
            if not fds:
                return  # the parent closed its end
            conn = socket.socket(fileno=fds[0])
            try:
                asyncio.run_coroutine_threadsafe(loop.connect_accepted_socket(protocol, conn), loop)
            except RuntimeError:  # the loop has closed: the server stopped meanwhile
                conn.close()
                return

    @property
    def started(self) -> bool:
        return bool(self._uvicorn.started)

    def stop(self) -> None:
        self._uvicorn.should_exit = True

    def close(self) -> None:
        """Close the database and the model once no request holds them (idempotent)."""
        self.service.close()
        self.socket.close()
