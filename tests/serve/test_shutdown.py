"""`localrec serve` as a process: SIGTERM while clients are recording stops it gracefully,
with every acknowledged event stored and no request's events stored in part; with
`--workers 2` too, where the parent passes the signal on to each worker."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import link_models
from tests.serve.conftest import Device, Spawned

CLIENTS = 4
BATCH = 5  # events per request: one transaction, stored whole or not at all


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_finishes_the_requests_in_flight_and_closes(
    device: Device, pulled_home: Path, tmp_path: Path, workers: int
) -> None:
    home = link_models(pulled_home, tmp_path / "home")
    db = tmp_path / "me.db"
    server = Spawned(device, home, db, workers)
    url, token = server.url, server.token
    acknowledged: set[tuple[str, int]] = set()
    lock = threading.Lock()

    def record(c: int) -> None:
        user = f"term-{c}"
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}) as client:
            for batch in range(10_000):
                events = [
                    {"user": user, "item": f"k{j % 12:02d}{j % 5}", "value": batch}
                    for j in range(BATCH)
                ]
                try:
                    answer = client.post("/v1/events", json={"events": events}, timeout=30)
                except httpx.HTTPError:
                    return  # the server has gone
                if answer.status_code != 200:
                    return
                with lock:
                    acknowledged.add((user, batch))

    clients = [threading.Thread(target=record, args=(c,)) for c in range(CLIENTS)]
    for client in clients:
        client.start()
    deadline = time.monotonic() + 60
    while len(acknowledged) < 40 and time.monotonic() < deadline:
        time.sleep(0.05)
    err = server.stop(timeout=60)  # SIGTERM; it must exit 0 or by the signal
    for client in clients:
        client.join(60)

    assert "Traceback" not in err
    assert len(acknowledged) >= 40
    assert not Path(f"{db}-wal").exists()  # the database was closed, not abandoned
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        stored = {
            (user, int(value)): n
            for user, value, n in conn.execute(
                "SELECT user_id, value, count(*) FROM events GROUP BY user_id, value"
            )
        }
    finally:
        conn.close()
    assert set(stored.values()) == {BATCH}  # no request stored in part
    assert acknowledged <= set(stored)  # nothing acknowledged was lost
    assert len(stored) <= len(acknowledged) + CLIENTS  # at most the one in flight per client
    if workers > 1:  # the connections were spread: both workers stored events
        assert len({user for user, _ in stored}) == CLIENTS
