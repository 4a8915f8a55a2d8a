"""`localrec serve --workers 2`: two processes answer on one port, each with its own model
and pack; one that dies is replaced while the other keeps answering."""

from __future__ import annotations

import os
import signal
import time

import httpx

from tests.serve.conftest import Spawned


def _ask(server: Spawned, n: int) -> list[int]:
    """n recommend requests, each on a connection of its own: their status codes."""
    codes = []
    body = {"history": "a sushi knife", "domain": "kitchen", "k": 3}
    for _ in range(n):
        with server.client(limits=httpx.Limits(max_keepalive_connections=0)) as client:
            codes.append(client.post("/v1/recommend", json=body).status_code)
    return codes


def test_two_workers_serve_and_a_dead_one_is_replaced(two_workers: Spawned) -> None:
    first = two_workers.workers()
    assert len(first) == 2
    assert _ask(two_workers, 10) == [200] * 10
    os.kill(first[0], signal.SIGKILL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        now = two_workers.workers()
        if len(now) == 2 and first[0] not in now:
            break
        time.sleep(0.2)
    now = two_workers.workers()
    assert len(now) == 2 and first[1] in now and first[0] not in now
    assert _ask(two_workers, 10) == [200] * 10
    with two_workers.client() as client:
        health = client.get("/v1/health").json()
    assert health["status"] == "ok" and health["adapter"] is True
    err = two_workers.stop()
    assert f"worker {first[0]} stopped" in err and "starting another" in err
    assert "Traceback" not in err
