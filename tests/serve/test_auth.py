"""Who may call the server: reads open on loopback, writes only with the token, every API
request with the token off loopback; the Host must be this machine; CORS only for the
origins given; the generated token is readable by this user alone."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from localrec.errors import ServeError
from localrec.serve.app import create_app
from localrec.serve.auth import check_token, is_loopback, load_or_create_token
from localrec.serve.guard import Policy
from tests.serve.conftest import Running, app_server

TOKEN = "t" * 8 + "-0123456789abcdef"
RECOMMEND = {"history": "green tea", "domain": "kitchen", "k": 2}
EVENTS = {"events": [{"user": "auth-user", "item": "k000"}]}


@pytest.mark.parametrize(
    ("method", "path", "body", "headers", "status"),
    [
        ("GET", "/v1/health", None, {}, 200),
        ("GET", "/openapi.json", None, {}, 200),
        ("POST", "/v1/recommend", RECOMMEND, {}, 200),
        ("POST", "/v1/events", EVENTS, {}, 401),
        ("POST", "/v1/events", EVENTS, {"Authorization": "Bearer wrong-token-0123456789"}, 401),
        ("POST", "/v1/events", EVENTS, {"Authorization": "Basic dXNlcjpwYXNz"}, 401),
        ("POST", "/v1/events", EVENTS, {"Authorization": "Bearer"}, 401),
        ("POST", "/v1/forget", {"user": "auth-user"}, {}, 401),
        ("POST", "/v1/events", EVENTS, "token", 200),
        ("POST", "/v1/forget", {"user": "auth-user"}, "token", 200),
    ],
)
def test_on_loopback_reads_are_open_and_writes_need_the_token(
    server: Running, method: str, path: str, body: object, headers: object, status: int
) -> None:
    sent = server.auth if headers == "token" else headers
    assert isinstance(sent, dict)
    with server.client() as client:
        answer = client.request(method, path, json=body, headers=sent)
    assert answer.status_code == status, answer.text
    if status == 401:
        assert answer.headers["www-authenticate"] == "Bearer"
        assert answer.json()["field"] == "Authorization"
        assert "needs the token" in answer.json()["error"]


@pytest.fixture(scope="module")
def off_loopback(server: Running) -> Iterator[Running]:
    """The session's service under the policy of a server bound beyond loopback."""
    from localrec.serve.server import Server

    served = server.target
    assert isinstance(served, Server)
    running = app_server(create_app(served.service, Policy(TOKEN, False, "0.0.0.0")))
    running.token = TOKEN
    yield running
    running.stop()


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/v1/health", None),
        ("GET", "/v1/stats", None),
        ("GET", "/v1/users", None),
        ("GET", "/openapi.json", None),
        ("GET", "/v1/nothing-here", None),
        ("POST", "/v1/recommend", RECOMMEND),
        ("POST", "/v1/score", {"history": "tea", "items": ["k000"]}),
        ("POST", "/v1/similar", {"item": "k000"}),
    ],
)
def test_off_loopback_every_api_request_needs_the_token(
    off_loopback: Running, method: str, path: str, body: object
) -> None:
    with off_loopback.client() as client:
        refused = client.request(method, path, json=body, headers={"Host": "shop.example"})
        allowed = client.request(method, path, json=body, headers=off_loopback.auth)
    assert refused.status_code == 401
    assert allowed.status_code == (404 if "nothing" in path else 200), allowed.text


def test_off_loopback_the_playground_files_need_no_token(off_loopback: Running) -> None:
    """They hold no data; the page sends the token with its API calls."""
    with off_loopback.client() as client:
        assert client.get("/").status_code == 200
        assert client.get("/static/playground.css").status_code == 200


@pytest.mark.parametrize(
    ("host", "status"),
    [
        ("127.0.0.1", 200),
        ("localhost:8765", 200),
        ("[::1]:8765", 200),
        ("evil.example", 421),
        ("127.0.0.1.evil.example:80", 421),
        ("", 421),
    ],
)
def test_on_loopback_the_host_must_be_this_machine(server: Running, host: str, status: int) -> None:
    """A page whose DNS name was rebound to 127.0.0.1 sends its own name as the Host."""
    with server.client() as client:
        answer = client.get("/v1/health", headers={"Host": host})
    assert answer.status_code == status
    if status == 421:
        assert answer.json()["field"] == "Host"


def test_no_cors_unless_an_origin_is_given(server: Running) -> None:
    origin = {"Origin": "http://localhost:3000"}
    with server.client() as client:
        answer = client.get("/v1/health", headers=origin)
        preflight = client.options(
            "/v1/recommend",
            headers={**origin, "Access-Control-Request-Method": "POST"},
        )
    assert answer.status_code == 200
    assert "access-control-allow-origin" not in answer.headers
    assert "access-control-allow-origin" not in preflight.headers


def test_cors_for_the_origins_given_only(server: Running) -> None:
    from localrec.serve.server import Server

    served = server.target
    assert isinstance(served, Server)
    app = create_app(
        served.service, Policy(served.token, True, "127.0.0.1"), cors=("http://localhost:3000",)
    )
    running = app_server(app)
    try:
        with running.client() as client:
            preflight = client.options(
                "/v1/events",
                headers={
                    "Origin": "http://localhost:3000",
                    "Access-Control-Request-Method": "POST",
                    "Access-Control-Request-Headers": "authorization, content-type",
                },
            )
            allowed = client.get("/v1/health", headers={"Origin": "http://localhost:3000"})
            other = client.get("/v1/health", headers={"Origin": "http://evil.example"})
    finally:
        running.stop()
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "http://localhost:3000"
    assert allowed.headers["access-control-allow-origin"] == "http://localhost:3000"
    assert "access-control-allow-origin" not in other.headers


def test_the_generated_token_is_this_users_alone(tmp_path: Path) -> None:
    path = tmp_path / "serve" / "token"
    token, where = load_or_create_token(path)
    assert where == path and len(token) >= 40
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert load_or_create_token(path) == (token, path)  # kept across restarts
    path.chmod(0o644)
    with pytest.raises(ServeError, match=r"can be read by other users \(mode 644\)"):
        load_or_create_token(path)
    path.unlink()
    assert load_or_create_token(path)[0] != token  # deleted: a new one


@pytest.mark.parametrize(
    "token", ["short", "x" * 15, "has space in it 123456", "ü" * 20, "x" * 257]
)
def test_a_given_token_must_be_long_and_header_safe(token: str) -> None:
    with pytest.raises(ServeError, match="--token must be 16 to 256 characters"):
        check_token(token)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),
        ("::1", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.20", False),
        ("my-laptop.local", False),
    ],
)
def test_what_counts_as_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback
