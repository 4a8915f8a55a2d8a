"""Every bad request gets a 4xx JSON answer naming the field, never a 500: each field's
mistakes one by one, malformed and oversized bodies, and fuzzed bodies for every
endpoint."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from localrec.serve.schemas import MAX_BODY_BYTES
from tests.helpers import FUZZ_RUNS, JSON_VALUE, SQLISH, TEXT, fuzz, fuzz_report
from tests.serve.conftest import Running

OK = {"history": "green tea", "domain": "kitchen"}
EVENT = {"user": "bad-requests", "item": "k000"}


def assert_refusal(answer: httpx.Response, status: int, field: str | None) -> None:
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert set(body) == {"error", "field", "errors"}
    assert body["field"] == field, body
    assert body["error"] and "Traceback" not in answer.text


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/recommend", {"domain": "kitchen"}, "user"),
        ("/v1/recommend", {**OK, "user": "ann"}, "user"),
        ("/v1/recommend", {**OK, "domain": "kitchn"}, "domain"),
        ("/v1/recommend", {"history": "tea"}, "domain"),
        ("/v1/recommend", {**OK, "k": 0}, "k"),
        ("/v1/recommend", {**OK, "k": 101}, "k"),
        ("/v1/recommend", {**OK, "k": "5"}, "k"),
        ("/v1/recommend", {**OK, "k": True}, "k"),
        ("/v1/recommend", {**OK, "k": 2.5}, "k"),
        ("/v1/recommend", {**OK, "threshold": 1.5}, "threshold"),
        ("/v1/recommend", {**OK, "user_vector": "best"}, "user_vector"),
        ("/v1/recommend", {**OK, "from": ["food"]}, "from[0]"),
        ("/v1/recommend", {**OK, "from": "books"}, "from"),
        ("/v1/recommend", {**OK, "explain": "yes"}, "explain"),
        ("/v1/recommend", {**OK, "kk": 5}, "kk"),
        ("/v1/recommend", {**OK, "from_": ["books"]}, "from_"),
        ("/v1/recommend", {**OK, "history": ""}, "history"),
        ("/v1/recommend", {**OK, "history": " ; ;"}, "history"),
        ("/v1/recommend", {**OK, "history": []}, "history"),
        ("/v1/recommend", {**OK, "history": "tea;" * 101}, "history"),
        ("/v1/recommend", {**OK, "history": ["tea"] * 101}, "history"),
        ("/v1/recommend", {**OK, "history": "x" * 20_001}, "history"),
        (
            "/v1/recommend",
            {**OK, "history": [{"item": "k000", "action": "Bought!"}]},
            "history[0].action",
        ),
        ("/v1/recommend", {**OK, "history": [{"item": "k000", "extra": 1}]}, "history[0].extra"),
        ("/v1/recommend", {**OK, "history": [["k000", "view"]]}, "history[0]"),
        ("/v1/recommend", {**OK, "user": None, "history": None}, "user"),
        ("/v1/recommend", {"user": "x" * 513, "domain": "kitchen"}, "user"),
        ("/v1/recommend", {"user": "a\x00b", "domain": "kitchen"}, "user"),
        ("/v1/recommend", {**OK, "candidates": []}, "candidates"),
        ("/v1/recommend", {**OK, "candidates": ["b000"]}, "candidates"),
        ("/v1/recommend", {**OK, "candidates": ["k000", "k000"]}, "candidates"),
        ("/v1/recommend", {**OK, "candidates": [1.5]}, "candidates[0]"),
        ("/v1/score", {"history": "tea", "items": []}, "items"),
        ("/v1/score", {"history": "tea", "items": ["k000", "nope"]}, "items"),
        ("/v1/score", {"history": "tea", "items": "k000"}, "items"),
        ("/v1/score", {"history": "tea", "items": ["k000"], "user_vector": "tuned"}, "history"),
        ("/v1/score", {"user": "nobody-at-all", "items": ["k000"]}, "user"),
        ("/v1/similar", {"item": "nope"}, "item"),
        ("/v1/similar", {"item": "k000", "domain": "food"}, "domain"),
        ("/v1/similar", {"item": "k000", "k": -1}, "k"),
        ("/v1/similar", {"item": None}, "item"),
        ("/v1/similar", {}, "item"),
        ("/v1/events", {"events": []}, "events"),
        ("/v1/events", {"events": [EVENT] * 1001}, "events"),
        ("/v1/events", {"events": [{"item": "k000"}]}, "events[0].user"),
        ("/v1/events", {"events": [EVENT, {**EVENT, "item": "nope"}]}, "events[1]"),
        ("/v1/events", {"events": [{**EVENT, "action": "BUY"}]}, "events[0].action"),
        ("/v1/events", {"events": [{**EVENT, "value": "five"}]}, "events[0].value"),
        ("/v1/events", {"events": [{**EVENT, "time": "yesterday"}]}, "events[0]"),
        ("/v1/events", {"events": [{**EVENT, "time": True}]}, "events[0].time"),
        ("/v1/events", {"events": [{**EVENT, "user": " "}]}, "events[0].user"),
        ("/v1/events", {"events": [{**EVENT, "item": ""}]}, "events[0]"),
        ("/v1/events", {"events": [{**EVENT, "item": False}]}, "events[0].item"),
        ("/v1/events", {"event": [EVENT]}, "events"),
        ("/v1/forget", {"user": ""}, "user"),
        ("/v1/forget", {"user": ["a"]}, "user"),
        ("/v1/users?limit=0", None, "limit"),
        ("/v1/users?limit=many", None, "limit"),
    ],
)
def test_each_mistake_names_its_field(server: Running, path: str, body: Any, field: str) -> None:
    with server.client() as client:
        if body is None:
            answer = client.get(path)
        else:
            answer = client.post(path, json=body, headers=server.auth)
    assert_refusal(answer, 422, field)


@pytest.mark.parametrize(
    ("content", "headers", "status", "field"),
    [
        (b"{nope", {"Content-Type": "application/json"}, 400, "body"),
        (b"", {"Content-Type": "application/json"}, 400, "body"),
        (b"[1, 2]", {"Content-Type": "application/json"}, 422, "body"),
        (b"\xff\xfe", {"Content-Type": "application/json"}, 400, "body"),
        (json.dumps(OK).encode(), {"Content-Type": "text/plain"}, 415, "Content-Type"),
        (json.dumps(OK).encode(), {}, 415, "Content-Type"),
        (b"{}" + b" " * MAX_BODY_BYTES, {"Content-Type": "application/json"}, 413, "body"),
    ],
)
def test_malformed_bodies(
    server: Running, content: bytes, headers: dict[str, str], status: int, field: str
) -> None:
    with server.client() as client:
        answer = client.post("/v1/recommend", content=content, headers=headers)
    assert_refusal(answer, status, field)


def test_a_streamed_body_is_cut_off_at_the_limit(server: Running) -> None:
    """Without a Content-Length, the server counts what arrives."""

    def chunks() -> Any:
        yield b'{"history": "'
        for _ in range(20):
            yield b"x" * 65_536
        yield b'", "domain": "kitchen"}'

    with server.client() as client:
        answer = client.post(
            "/v1/recommend", content=chunks(), headers={"Content-Type": "application/json"}
        )
    assert_refusal(answer, 413, "body")


def test_unknown_endpoints_and_methods(server: Running) -> None:
    with server.client() as client:
        assert_refusal(client.get("/v1/nothing"), 404, None)
        assert_refusal(client.get("/v1/recommend"), 405, None)
        assert_refusal(client.delete("/v1/health"), 405, None)


# -- fuzzed bodies ---------------------------------------------------------------------------

FIELDS = {
    "/v1/recommend": (
        "user",
        "history",
        "domain",
        "k",
        "threshold",
        "from",
        "user_vector",
        "explain",
        "include_seen",
        "fallback",
        "candidates",
    ),
    "/v1/score": ("user", "history", "items", "from", "user_vector"),
    "/v1/similar": ("item", "domain", "k"),
    "/v1/events": ("events",),
    "/v1/forget": ("user",),
}
# Values a real caller might send, beside anything at all.
PLAUSIBLE = st.one_of(
    st.sampled_from(["kitchen", "books", "k000", "b011", "green tea", "hybrid", "max-sim"]),
    st.integers(-3, 200),
    st.floats(-2, 2),
    st.lists(st.sampled_from(["k000", "b011", "tea", "kitchen"]), max_size=4),
    st.lists(
        st.fixed_dictionaries({"user": st.just("fuzz"), "item": st.sampled_from(["k000", "x"])}),
        max_size=3,
    ),
    SQLISH,
    TEXT,
    JSON_VALUE,
)


def bodies(path: str) -> st.SearchStrategy[Any]:
    known = st.dictionaries(st.sampled_from(FIELDS[path]), PLAUSIBLE, max_size=5)
    extra = st.dictionaries(TEXT, JSON_VALUE, max_size=2)
    return st.one_of(known, st.builds(lambda a, b: {**b, **a}, known, extra), JSON_VALUE)


@pytest.mark.parametrize("path", sorted(FIELDS))
def test_fuzzed_bodies_never_get_a_500(server: Running, path: str) -> None:
    client = server.client(headers=server.auth)

    @fuzz(60)
    @given(body=bodies(path))
    def check(body: Any) -> None:
        FUZZ_RUNS[path] += 1
        content = json.dumps(body, allow_nan=True).encode()
        answer = client.post(path, content=content, headers={"Content-Type": "application/json"})
        assert answer.status_code in (200, 400, 413, 422), (body, answer.text)
        if answer.status_code != 200:
            assert set(answer.json()) == {"error", "field", "errors"}

    try:
        check()
    finally:
        client.close()
    fuzz_report(path, 60)
