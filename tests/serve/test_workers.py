"""`localrec serve --workers 2`: two processes answer on one port, each with its own model
and pack; one that dies is replaced while the other keeps answering; a worker serves its
reads on its event loop."""

from __future__ import annotations

import inspect
import os
import signal
import time
from typing import Any

import httpx

from tests.serve.conftest import Running, Spawned


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


def test_a_workers_reads_run_on_its_event_loop_and_its_schema_is_the_same(
    server: Running,
) -> None:
    """A worker of several (`inline`) serves its reads on its event loop, one after another,
    and its writes on the thread pool; its routes and their parameters are the same."""
    from fastapi.routing import APIRoute

    from localrec.serve.app import create_app
    from localrec.serve.guard import Policy

    service = server.target.service
    policy = Policy(server.token, True, "127.0.0.1")
    threaded, inline = create_app(service, policy), create_app(service, policy, inline=True)

    def on_loop(app: Any) -> dict[str, bool]:
        return {
            route.path: inspect.iscoroutinefunction(route.endpoint)
            for route in app.routes
            if isinstance(route, APIRoute) and route.path.startswith("/v1/")
        }

    assert inline.openapi() == threaded.openapi()
    assert on_loop(threaded) == dict.fromkeys(on_loop(threaded), False)
    assert on_loop(inline) == {
        "/v1/health": True,
        "/v1/stats": True,
        "/v1/users": True,
        "/v1/recommend": True,
        "/v1/score": True,
        "/v1/similar": True,
        "/v1/events": False,
        "/v1/forget": False,
    }
