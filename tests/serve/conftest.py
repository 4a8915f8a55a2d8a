"""A real `localrec serve` on 127.0.0.1 for the tests of the HTTP API, and sockets that may
reach 127.0.0.1 and nothing else.

The device serves the pack of tests/packs/corpus.py (two domains, books and kitchen, tuned
with the real default model) with a private database of its own. One server runs per test
session, in a thread of this process; tests that change the database use users of their
own. Tests that need a server of another kind (off loopback, with CORS) run `create_app`
over the same `Service`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import NetworkBlocked, link_models
from tests.packs.corpus import vendor_and_pack

# The real functions, before `no_network` replaces them.
_CONNECT = socket.socket.connect
_CONNECT_EX = socket.socket.connect_ex
_CREATE_CONNECTION = socket.create_connection
_GETADDRINFO = socket.getaddrinfo
LOOPBACK = "127.0.0.1"


def _host(address: Any) -> str | None:
    return str(address[0]) if isinstance(address, tuple) and address else None


@pytest.fixture(autouse=True)
def loopback_only(no_network: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """`no_network`, except that connections to 127.0.0.1 go through."""

    def refuse(what: Any) -> NetworkBlocked:
        return NetworkBlocked(f"a test tried to reach {what!r}; only {LOOPBACK} is allowed")

    def connect(sock: socket.socket, address: Any) -> None:
        if _host(address) != LOOPBACK:
            raise refuse(address)
        _CONNECT(sock, address)

    def connect_ex(sock: socket.socket, address: Any) -> int:
        if _host(address) != LOOPBACK:
            raise refuse(address)
        return _CONNECT_EX(sock, address)

    def create_connection(address: Any, *args: Any, **kwargs: Any) -> socket.socket:
        if _host(address) != LOOPBACK:
            raise refuse(address)
        return _CREATE_CONNECTION(address, *args, **kwargs)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host != LOOPBACK:
            raise refuse(host)
        return _GETADDRINFO(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket, "create_connection", create_connection)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


class _Home:
    """LOCALREC_HOME set to `path` while the block runs (session fixtures run outside the
    per-test `localrec_home`)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.saved: str | None = None

    def __enter__(self) -> Path:
        self.saved = os.environ.get("LOCALREC_HOME")
        os.environ["LOCALREC_HOME"] = str(self.path)
        return self.path

    def __exit__(self, *exc: object) -> None:
        if self.saved is None:
            os.environ.pop("LOCALREC_HOME", None)
        else:
            os.environ["LOCALREC_HOME"] = self.saved


@dataclass
class Device:
    """What the session's server serves: a pack, a private database and a model home."""

    pack: Path
    db: Path
    home: Path
    vendor: Path  # the database the pack was built from: items, vectors, adapter, events


@pytest.fixture(scope="session")
def device(tmp_path_factory: pytest.TempPathFactory, pulled_home: Path) -> Device:
    root = tmp_path_factory.mktemp("serve")
    home = link_models(pulled_home, root / "home")
    with _Home(home):
        vendor, pack = vendor_and_pack(tmp_path_factory, pulled_home, root)
    return Device(pack, root / "me.db", home, vendor)


class Running:
    """A uvicorn server in a thread of this process, stopped by `stop()`."""

    def __init__(
        self, target: Any, url: str, token: str, sockets: list[socket.socket] | None = None
    ) -> None:
        self.target = target  # a localrec Server, or a uvicorn.Server and its socket
        self.url = url.rstrip("/")
        self.token = token
        self.sockets = sockets
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 60
        while not target.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the server did not start")
            time.sleep(0.02)

    def _run(self) -> None:
        if self.sockets is not None:
            self.target.run(sockets=self.sockets)
        else:
            self.target.run()

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=60, **kwargs)

    def stop(self) -> None:
        if self.sockets is None:
            self.target.stop()
        else:
            self.target.should_exit = True
        self.thread.join(60)
        assert not self.thread.is_alive()


@pytest.fixture(scope="session")
def server(device: Device) -> Iterator[Running]:
    """`localrec serve --pack PACK --db me.db` on a free port of 127.0.0.1."""
    from localrec.serve.server import Server, ServeSettings

    with _Home(device.home):
        served = Server(ServeSettings(db=device.db, pack=device.pack, port=0, version="test"))
    running = Running(served, served.url, served.token)
    yield running
    running.stop()


class Spawned:
    """`python -m localrec serve --workers N` as a child process on a free port of
    127.0.0.1, with a private database of its own; `stop()` sends SIGTERM."""

    def __init__(self, device: Device, home: Path, db: Path, workers: int) -> None:
        from tests.helpers import subprocess_env

        self.db = db
        args = ["serve", "--pack", str(device.pack), "--db", str(db), "--port", "0"]
        self.process = subprocess.Popen(
            [sys.executable, "-m", "localrec", *args, "--workers", str(workers)],
            env=subprocess_env(home, OPENBLAS_NUM_THREADS="1"),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.process.stderr is not None
        first = self.process.stderr.readline()  # printed once every worker is loaded
        assert first.startswith("localrec serve: http://127.0.0.1:"), (
            first + self.process.stderr.read()
        )
        self.url = first.split()[2].rstrip("/")
        self.token = (home / "serve" / "token").read_text().strip()

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=60, **kwargs)

    def workers(self) -> list[int]:
        """The pids of the worker processes (children that serve, not multiprocessing's
        resource tracker)."""
        found = []
        listed = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        for pid in map(int, listed.read_text().split()):
            with contextlib.suppress(OSError):
                if b"resource_tracker" not in Path(f"/proc/{pid}/cmdline").read_bytes():
                    found.append(pid)
        return found

    def stop(self, timeout: float = 90) -> str:
        """SIGTERM, then what the server wrote to stderr; it must exit cleanly."""
        self.process.send_signal(signal.SIGTERM)
        _, err = self.process.communicate(timeout=timeout)
        assert self.process.returncode in (0, -signal.SIGTERM), err
        return err


@pytest.fixture(scope="module")
def two_workers(
    device: Device, pulled_home: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Spawned]:
    """`localrec serve --workers 2` over the device's pack, with a database of its own."""
    root = tmp_path_factory.mktemp("workers")
    spawned = Spawned(device, link_models(pulled_home, root / "home"), root / "me.db", 2)
    yield spawned
    if spawned.process.poll() is None:
        spawned.stop()


def app_server(app: Any) -> Running:
    """Any ASGI app (say, `create_app` under another policy) on a free port of 127.0.0.1."""
    import uvicorn

    from localrec.serve.server import bind

    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    sock = bind(LOOPBACK, 0)
    url = f"http://{LOOPBACK}:{sock.getsockname()[1]}"
    return Running(uvicorn.Server(config), url, "", [sock])
