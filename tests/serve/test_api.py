"""Every endpoint of `localrec serve` over real HTTP on 127.0.0.1, against the library
calls the CLI makes: the server gives what `Recommender` gives, records what `add events`
stores, forgets what `forget` deletes."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path
from typing import Any

import httpx
import pytest

from localrec.recommend.recommender import Recommender
from localrec.serve.server import Server, ServeSettings
from tests.conftest import NetworkBlocked
from tests.helpers import count
from tests.serve.conftest import Device, Running


def post(server: Running, path: str, body: Any, **kwargs: Any) -> httpx.Response:
    with server.client() as client:
        return client.post(path, json=body, **kwargs)


def test_health_names_what_is_served(server: Running, device: Device) -> None:
    with server.client() as client:
        health = client.get("/v1/health")
    assert health.status_code == 200
    assert health.headers["cache-control"] == "no-store"
    assert health.json() == {
        "status": "ok",
        "version": "test",
        "model": "all-minilm-l6-v2",
        "pack": str(device.pack),
        "db": str(device.db),
        "domains": ["books", "kitchen"],
        "adapter": True,
        "token_for": "writes",
    }


@pytest.mark.parametrize(
    "body",
    [
        {"history": "bought a green tea kettle; rated The sushi cookbook 5/5", "domain": "kitchen"},
        {"history": ["b000", {"item": "k011", "action": "view"}], "domain": "books", "k": 3},
        {"history": ["k000", "k001"], "domain": "kitchen", "user_vector": "max-sim", "k": 5},
        {"history": "espresso", "domain": "kitchen", "threshold": 0.3, "explain": True},
        {"history": ["b000"], "domain": "kitchen", "candidates": ["k013", "k000"]},
    ],
)
def test_recommend_is_the_librarys_list(
    server: Running, device: Device, model_home: Path, body: Any
) -> None:
    answer = post(server, "/v1/recommend", body)
    assert answer.status_code == 200, answer.text
    history = body["history"]
    if isinstance(history, list):
        history = [(h["item"], h["action"]) if isinstance(h, dict) else h for h in history]
    options = {k: v for k, v in body.items() if k not in ("history",)}
    with Recommender(device.db.with_name("library.db"), pack=device.pack) as rec:
        expected = rec.recommend(history=history, **options).to_dict()
    assert answer.json() == expected
    ids = [r["item_id"] for r in expected["items"]]
    if "candidates" in body:
        assert sorted(ids) == ["k000", "k013"]
    elif "threshold" not in body:
        assert len(ids) == body.get("k", 10)


def test_recorded_events_change_the_list_and_forget_removes_them(server: Running) -> None:
    user = "api-alice"
    ask = {"user": user, "domain": "kitchen", "k": 5, "explain": True}
    before = post(server, "/v1/recommend", ask).json()
    assert before["fallback"] == "popular" and before["history_size"] == 0

    events = [
        {"user": user, "item": "k000", "action": "purchase", "time": 1_700_000_000},
        {
            "user": user,
            "item": "b011",
            "action": "rate",
            "value": 5,
            "time": "2024-01-02T03:04:05Z",
        },
        {"user": user, "item": "k021", "review": "a fine pan"},
    ]
    stored = post(server, "/v1/events", {"events": events}, headers=server.auth)
    assert stored.status_code == 200 and stored.json() == {"stored": 3}

    after = post(server, "/v1/recommend", ask).json()
    assert after["fallback"] is None and after["history_size"] == 3
    assert after["user_vector"] == "tuned-hybrid"
    shown = {r["item_id"] for r in after["items"]}
    assert len(shown) == 5 and not shown & {"k000", "k021"}  # what the user has is left out
    assert all(r["because_detail"] for r in after["items"])

    with server.client() as client:
        users = client.get("/v1/users").json()["users"]
        stats = client.get("/v1/stats").json()
    assert {"user": user, "events": 3} in users
    assert stats["events"] >= 3 and stats["pack"]["items"] == {"books": 60, "kitchen": 60}

    forgot = post(server, "/v1/forget", {"user": user}, headers=server.auth)
    assert forgot.status_code == 200 and forgot.json() == {"user": user, "deleted": 3}
    again = post(server, "/v1/recommend", ask).json()
    assert again["fallback"] == "popular" and again["history_size"] == 0


def test_score_and_similar_are_the_librarys(
    server: Running, device: Device, model_home: Path
) -> None:
    history = ["k000", "b011"]
    scored = post(server, "/v1/score", {"history": history, "items": ["k001", "b020", "k100"]})
    similar = post(server, "/v1/similar", {"item": "k000", "k": 4})
    assert scored.status_code == similar.status_code == 200
    with Recommender(device.db.with_name("library.db"), pack=device.pack) as rec:
        expected_scores = [
            r.to_dict() for r in rec.score(None, ["k001", "b020", "k100"], history=history)
        ]
        expected_similar = [r.to_dict() for r in rec.similar("k000", k=4)]
    assert scored.json()["items"] == expected_scores
    assert [r["item_id"] for r in scored.json()["items"]] == ["k001", "b020", "k100"]
    assert all(-1 <= r["score"] <= 1 for r in scored.json()["items"])
    assert scored.json()["notes"] == [
        "cosines of the zero-shot user vector; recommend ranks with the adapter"
    ]
    assert similar.json() == {"notes": [], "items": expected_similar}
    assert "k000" not in {r["item_id"] for r in expected_similar}


def test_the_openapi_schema_documents_every_endpoint(server: Running) -> None:
    with server.client() as client:
        schema = client.get("/openapi.json").json()
        docs = client.get("/docs")
    assert docs.status_code == 404  # the interactive pages would load scripts from a CDN
    paths = schema["paths"]
    assert set(paths) == {
        "/v1/health",
        "/v1/stats",
        "/v1/users",
        "/v1/recommend",
        "/v1/score",
        "/v1/similar",
        "/v1/events",
        "/v1/forget",
    }
    secured = {p for p, ops in paths.items() if any("security" in o for o in ops.values())}
    assert secured == {"/v1/events", "/v1/forget"}
    recommend = schema["components"]["schemas"]["RecommendRequest"]["properties"]
    assert recommend["k"]["maximum"] == 100


def test_the_playground_files_are_served(server: Running) -> None:
    with server.client() as client:
        page = client.get("/")
        script = client.get("/static/playground.js")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '<script src="/static/playground.js">' in page.text
    assert "http" not in page.text.replace("http-equiv", "")  # nothing from another host
    assert script.status_code == 200 and "/v1/recommend" in script.text


def test_only_loopback_is_reachable_in_these_tests() -> None:
    """The fixture lets 127.0.0.1 through and nothing else."""
    with pytest.raises(NetworkBlocked):
        socket.create_connection(("10.0.0.1", 80), timeout=1)
    with pytest.raises(NetworkBlocked):
        socket.getaddrinfo("example.com", 443)
    with socket.socket() as sock, pytest.raises(NetworkBlocked):
        sock.connect(("192.168.1.1", 80))
    with pytest.raises(NetworkBlocked):
        httpx.get("http://localhost:9/")  # a name, even of this machine, is not resolved


def test_the_private_database_holds_only_recorded_events(server: Running, device: Device) -> None:
    user = "api-count"
    body = {"events": [{"user": user, "item": "k000"}, {"user": user, "item": 5}]}
    refused = post(server, "/v1/events", body, headers=server.auth)
    assert refused.status_code == 422 and refused.json()["field"] == "events[1]"
    assert count(device.db, "events", "WHERE user_id = ?", (user,)) == 0  # all or none


def test_a_database_without_a_pack(device: Device, model_home: Path, tmp_path: Path) -> None:
    """`localrec serve --db app.db`: the database's own items, vectors, adapter and events."""
    db = shutil.copy(device.vendor, tmp_path / "app.db")
    served = Server(ServeSettings(db=Path(db), port=0))
    running = Running(served, served.url, served.token)
    try:
        with running.client(headers=running.auth) as client:
            health = client.get("/v1/health").json()
            ask = {"user": "user-zq81-5", "domain": "kitchen", "k": 3}
            listed = client.post("/v1/recommend", json=ask)
            refused = client.post("/v1/events", json={"events": [{"user": "x", "item": "nope"}]})
    finally:
        running.stop()
    assert health["pack"] is None and health["domains"] == ["books", "kitchen"]
    assert listed.status_code == 200 and listed.json()["user_vector"] == "tuned-hybrid"
    with Recommender(Path(db)) as rec:
        assert listed.json() == rec.recommend("user-zq81-5", domain="kitchen", k=3).to_dict()
    assert refused.status_code == 422 and refused.json()["field"] == "events[0]"
    assert "add it with `localrec add items` first" in refused.json()["error"]
