"""`localrec serve --workers N`: N server processes answering on one listening socket.

One Python process runs one request's Python at a time, so a single server serves
concurrent clients one after another however many cores the machine has. Here the parent
binds the port and settles the token once, then starts each worker in a fresh interpreter
(`spawn`: nothing of the parent's threads, BLAS pools or model is shared), one after
another, each loading the model and the pack and warming up before the next starts (they
may write the same caches under LOCALREC_HOME). Each worker is a whole `Server` with its
own `Recommender` and SQLite connection, and listens on nothing: the parent accepts each
connection and passes it (its file descriptor, over a Unix socket) to the next worker in
turn, so keep-alive connections are spread evenly; left to the kernel, one worker took
most of them. SQLite keeps the workers' writes apart (one `BEGIN IMMEDIATE` transaction per write,
with a busy timeout), and a list read in one worker sees every event another worker has
acknowledged, because each read starts after that write committed.

The parent does no HTTP. On SIGINT or SIGTERM it passes SIGTERM on, so every worker finishes
its requests in flight and closes its database, and waits for them. A worker that dies is
replaced; one that cannot start stops the whole server with its reason.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import socket
import threading
import time
from dataclasses import replace
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from types import FrameType

from localrec.errors import LocalrecError, ServeError
from localrec.serve.auth import is_loopback, settle_token
from localrec.serve.server import (
    GRACE_SECONDS,
    Server,
    ServeSettings,
    bind,
    check_origins,
    require_extra,
    url_of,
)

__all__ = ["MAX_WORKERS", "Workers", "open_server"]

MAX_WORKERS = 64
START_SECONDS = 600  # a first start may convert the model: give it time
log = logging.getLogger("localrec.serve")


def open_server(settings: ServeSettings, workers: int = 1) -> Server | Workers:
    """The server `localrec serve` runs: this process alone, or `workers` processes."""
    if workers == 1:
        return Server(settings)
    return Workers(settings, workers)


def _worker(settings: ServeSettings, channel: socket.socket, conn: Connection) -> None:
    """A worker process: a whole server, serving the connections the parent passes on
    `channel`; says when it is ready."""
    try:
        server = Server(settings, sock=channel, handed=True)
    except LocalrecError as exc:
        conn.send(("error", str(exc)))
        return
    except KeyboardInterrupt:
        conn.send(("error", "interrupted while starting"))
        return
    except BaseException as exc:
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
        raise
    conn.send(("ready", ""))
    conn.close()
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C reached the whole process group
        server.run()


class Workers:
    """N bound, loaded worker processes; `run()` serves until a signal or `stop()`."""

    def __init__(self, settings: ServeSettings, count: int) -> None:
        if not 1 <= count <= MAX_WORKERS:
            raise ServeError(f"--workers {count}: give 1 to {MAX_WORKERS} processes")
        require_extra()
        check_origins(settings.cors)
        self.loopback = is_loopback(settings.host)
        token, self.token_file = settle_token(settings.token)
        self.settings = replace(settings, token=token)
        self._context = multiprocessing.get_context("spawn")
        self._processes: list[BaseProcess] = []
        self._channels: list[socket.socket] = []  # ours, to each worker
        self._stop = threading.Event()
        self.socket = bind(settings.host, settings.port)
        try:
            for _ in range(count):
                process, channel = self._start()
                self._processes.append(process)
                self._channels.append(channel)
        except BaseException:
            self.close()
            raise

    @property
    def url(self) -> str:
        return url_of(self.settings.host, self.socket)

    def _start(self) -> tuple[BaseProcess, socket.socket]:
        """One more worker, loaded and warm, and the channel to pass it connections; its
        reason to fail as a `ServeError`."""
        ours, theirs = self._context.Pipe(duplex=False)
        channel, far_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        process = self._context.Process(
            target=_worker, args=(self.settings, far_end, theirs), name="localrec-worker"
        )
        try:
            process.start()
        finally:
            theirs.close()
            far_end.close()
        deadline = time.monotonic() + START_SECONDS
        try:
            while not ours.poll(0.2):
                if not process.is_alive() or time.monotonic() > deadline:
                    process.kill()
                    process.join()
                    channel.close()
                    raise ServeError(
                        f"a worker process stopped before it was ready (exit code "
                        f"{process.exitcode}); run `localrec serve` without --workers to see why"
                    )
            kind, message = ours.recv()
        except EOFError:
            kind, message = "error", "a worker process stopped before it was ready"
        finally:
            ours.close()
        if kind != "ready":
            process.join(30)
            channel.close()
            raise ServeError(message)
        return process, channel

    def _hand_out(self) -> None:
        """Accept each connection and pass it to the next worker in turn, so that keep-alive
        connections are spread evenly (left to the kernel, one worker took most of them:
        whichever woke first accepted every connection waiting). A worker that has gone is
        skipped."""
        turn = 0
        while not self._stop.is_set():
            try:
                conn, _ = self.socket.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # closed: stopping
            with conn:
                for step in range(len(self._channels)):
                    try:
                        socket.send_fds(
                            self._channels[(turn + step) % len(self._channels)],
                            [b"c"],
                            [conn.fileno()],
                        )
                        break
                    except OSError:
                        continue
            turn += 1

    def run(self) -> None:
        """Serve until SIGINT/SIGTERM (in the main thread) or `stop()`; replace any worker
        that dies meanwhile."""
        previous = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                previous[sig] = signal.signal(sig, self._on_signal)
        self.socket.settimeout(0.5)  # the accepting thread sees a stop within that
        threading.Thread(target=self._hand_out, daemon=True, name="localrec-accept").start()
        try:
            while not self._stop.wait(0.5):
                for n, process in enumerate(self._processes):
                    if process.exitcode is not None and not self._stop.is_set():
                        log.warning(
                            "localrec serve: worker %s stopped (exit code %s); starting another",
                            process.pid,
                            process.exitcode,
                        )
                        self._processes[n], channel = self._start()
                        self._channels[n], gone = channel, self._channels[n]
                        gone.close()
        finally:
            self.close()
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._stop.set()

    @property
    def started(self) -> bool:
        return bool(self._processes) and all(p.is_alive() for p in self._processes)

    def stop(self) -> None:
        self._stop.set()

    def close(self) -> None:
        """SIGTERM to every worker, then wait while they finish their requests in flight
        (killed if one takes much longer than the grace period); idempotent."""
        self._stop.set()
        self.socket.close()  # nothing new is accepted, then the workers are told to stop
        for process in self._processes:
            if process.is_alive() and process.pid is not None:
                os.kill(process.pid, signal.SIGTERM)
        for channel in self._channels:
            channel.close()
        for process in self._processes:
            process.join(GRACE_SECONDS + 20)
            if process.is_alive():
                process.kill()
                process.join()
