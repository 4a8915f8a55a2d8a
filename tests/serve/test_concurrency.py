"""8 clients x 200 requests at once, mixing writes and reads: no error, nothing lost, every
client reads its own writes, and lists made while others write or embed are the lists a
lone caller gets. Against the server in one process, and against `--workers 2`, where
each request opens a connection of its own so that consecutive requests of one client
land on either worker: a write acknowledged by one is read by the other."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers import catalogue_items, count
from tests.serve.conftest import Device, Running, Spawned

CLIENTS = 8
REQUESTS = 200
HISTORIES = ("bought a green tea kettle; rated a sushi knife 5/5", "espresso; chocolate")


@pytest.mark.parametrize("kind", ["one process", "two workers"])
def test_eight_clients_at_once_lose_nothing(
    kind: str, request: pytest.FixtureRequest, device: Device
) -> None:
    server: Running | Spawned
    db: Path
    connections: dict[str, Any] = {}
    if kind == "one process":
        server, db = request.getfixturevalue("server"), device.db
    else:
        spawned: Spawned = request.getfixturevalue("two_workers")
        server, db = spawned, spawned.db
        connections["limits"] = httpx.Limits(max_keepalive_connections=0)
    items = [i["id"] for i in catalogue_items()]
    with server.client() as client:
        alone = {
            h: client.post("/v1/recommend", json={"history": h, "domain": "books", "k": 5}).json()
            for h in HISTORIES
        }
        events_before = client.get("/v1/stats").json()["events"]

    def work(c: int) -> list[str]:
        """One client's requests; the problems it saw."""
        user = f"concurrent-{c}"
        recorded = 0
        problems: list[str] = []
        with server.client(headers=server.auth, **connections) as client:
            for j in range(REQUESTS):
                kind = j % 4
                if kind == 0:
                    item = items[(c * 31 + j) % len(items)]
                    event = {"user": user, "item": item, "time": 1_700_000_000 + j}
                    answer = client.post("/v1/events", json={"events": [event]})
                    recorded += answer.status_code == 200 and answer.json() == {"stored": 1}
                elif kind == 1:
                    answer = client.post(
                        "/v1/recommend", json={"user": user, "domain": "kitchen", "k": 5}
                    )
                    if answer.status_code == 200 and answer.json()["history_size"] != recorded:
                        problems.append(f"{user} saw {answer.json()['history_size']} of {recorded}")
                elif kind == 2:
                    history = HISTORIES[(c + j) % 2]
                    ask = {"history": history, "domain": "books", "k": 5}
                    answer = client.post("/v1/recommend", json=ask)
                    if answer.status_code == 200 and answer.json() != alone[history]:
                        problems.append(f"{history!r} listed {answer.json()['items']}")
                else:
                    scored = {"user": user, "items": ["k000", "b011"]}
                    answer = client.post("/v1/score", json=scored)
                if answer.status_code != 200:
                    problems.append(f"{answer.status_code}: {answer.text[:200]}")
        if recorded != REQUESTS // 4:
            problems.append(f"{user}: {recorded} events acknowledged")
        return problems

    with ThreadPoolExecutor(CLIENTS) as pool:
        problems = [p for found in pool.map(work, range(CLIENTS)) for p in found]
    assert problems == []
    for c in range(CLIENTS):
        assert count(db, "events", "WHERE user_id = ?", (f"concurrent-{c}",)) == 50
    with server.client() as client:
        stats = client.get("/v1/stats").json()
    assert stats["events"] == events_before + CLIENTS * REQUESTS // 4
