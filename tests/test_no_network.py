"""localrec works offline by construction: every socket is blocked in the tests and the whole
pipeline still runs, strace sees no internet socket from llama.cpp's C code either, a pull
with HF_HUB_OFFLINE never tries the hub, and the hub's telemetry is off."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import NetworkBlocked
from tests.helpers import (
    assert_clean,
    catalogue_events,
    catalogue_items,
    count,
    invoke,
    subprocess_env,
    write_csv,
    write_jsonl,
)


@pytest.mark.parametrize(
    "attempt",
    [
        "socket.connect",
        "socket.connect_ex",
        "create_connection",
        "getaddrinfo",
        "urllib",
    ],
)
def test_the_socket_block_really_blocks(attempt: str) -> None:
    """Even a connection to a server that is listening on loopback right now is refused."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    address = server.getsockname()
    client = socket.socket()
    attempts: dict[str, Callable[[], Any]] = {
        "socket.connect": lambda: client.connect(address),
        "socket.connect_ex": lambda: client.connect_ex(address),
        "create_connection": lambda: socket.create_connection(address, timeout=1),
        "getaddrinfo": lambda: socket.getaddrinfo("huggingface.co", 443),
        "urllib": lambda: urllib.request.urlopen(f"http://{address[0]}:{address[1]}/", timeout=1),
    }
    try:
        with pytest.raises(NetworkBlocked, match="tried to open a network connection"):
            attempts[attempt]()
    finally:
        client.close()
        server.close()


def test_the_whole_pipeline_runs_offline(
    model_home: Path, tmp_path: Path, network_attempts: list[str], one_thread: None
) -> None:
    """add items, add events, encode, recommend, tune, recommend (tuned), eval --db, pack
    build, and recommend from the pack on a device: every command succeeds with every
    socket blocked, and not one connection is attempted."""
    items = write_csv(tmp_path / "items.csv", catalogue_items())
    events = catalogue_events()
    events_file = write_jsonl(tmp_path / "events.jsonl", events)
    db = str(tmp_path / "app.db")

    result = invoke("--db", db, "add", "items", str(items))
    assert_clean(result, 0)
    assert "stored 120 items" in result.stdout
    result = invoke("--db", db, "add", "events", str(events_file))
    assert_clean(result, 0)
    assert f"stored {len(events)} events" in result.stdout
    result = invoke("--db", db, "encode")
    assert_clean(result, 0)
    assert "encoded 120 item(s), skipped 0" in result.stdout

    result = invoke("--db", db, "recommend", "u0001", "--domain", "kitchen", "-k", "5", "--json")
    assert_clean(result, 0)
    recs = json.loads(result.stdout)["items"]
    assert len(recs) == 5 and {r["domain"] for r in recs} == {"kitchen"}
    assert [r["score"] for r in recs] == sorted((r["score"] for r in recs), reverse=True)
    seen = {e["item"] for e in events if e["user"] == "u0001"}
    assert not seen & {r["item_id"] for r in recs}

    result = invoke("--db", db, "tune", "--seed", "3")
    assert_clean(result, 0)
    assert re.search(r"^books: epoch \d+, valid NDCG@10", result.stdout, re.M)
    assert re.search(r"^kitchen: epoch \d+, valid NDCG@10", result.stdout, re.M)
    assert count(Path(db), "adapters") == 1

    result = invoke("--db", db, "recommend", "u0002", "--domain", "books", "--json")
    assert_clean(result, 0)
    assert len(json.loads(result.stdout)["items"]) == 10

    result = invoke("--db", db, "eval", "--negatives", "20", "--json")
    assert_clean(result, 0)
    rows = json.loads(result.stdout)["results"]
    methods = {r["method"] for r in rows}
    assert {"popularity", "itemknn", "localrec:item-mean", "localrec:tuned"} <= methods
    assert {r["setting"] for r in rows} == {"mixed", "cross"}
    assert all(0.0 <= r["ndcg@10"] <= 1.0 for r in rows if "ndcg@10" in r)

    # The vendor packs it; a device recommends from the pack with a private database.
    pack, device = str(tmp_path / "shop.lrpack"), str(tmp_path / "me.db")
    assert_clean(invoke("--db", db, "pack", "build", "--out", pack), 0)
    mine = write_jsonl(tmp_path / "mine.jsonl", [{"user": "me", "item": "k000", "time": 1}])
    assert_clean(invoke("--pack", pack, "--db", device, "add", "events", str(mine)), 0)
    result = invoke("--pack", pack, "--db", device, "recommend", "me", "--domain", "books")
    assert_clean(result, 0)
    result = invoke(
        "--pack", pack, "--db", device, "recommend", "--history", "a teapot", "--domain",
        "kitchen", "--json",
    )  # fmt: skip
    assert_clean(result, 0)
    assert len(json.loads(result.stdout)["items"]) == 10
    assert network_attempts == []


def test_no_inet_socket_is_opened_at_the_syscall_level(model_home: Path, tmp_path: Path) -> None:
    """The Python-level block cannot see C code (llama.cpp): strace can. encode and a
    recommend that embeds the history text open no AF_INET/AF_INET6 socket at all. A
    control process that opens one (and connects nowhere) shows the trace would see it."""
    strace = shutil.which("strace")
    if strace is None:
        pytest.skip("strace is not installed")
    db = tmp_path / "app.db"
    items = write_csv(tmp_path / "items.csv", catalogue_items()[:20])
    history = [{"user": "u0001", "item": i, "time": n} for n, i in enumerate(["k000", "b011"])]
    events = write_jsonl(tmp_path / "events.jsonl", history)
    assert_clean(invoke("--db", str(db), "add", "items", str(items)), 0)
    assert_clean(invoke("--db", str(db), "add", "events", str(events)), 0)
    log = tmp_path / "strace.log"
    python = f"{sys.executable} -m localrec --db {db}"
    control = f"{sys.executable} -c 'import socket; socket.socket().close()'"
    script = (
        f"{control} && {python} encode && "
        f"{python} recommend u0001 --domain kitchen --user-vector hybrid"
    )
    proc = subprocess.run(
        [
            strace,
            "-f",
            "-qq",
            "-e",
            "trace=socket,connect",
            "-e",
            "signal=none",
            "-o",
            str(log),
            "sh",
            "-c",
            script,
        ],
        env=subprocess_env(model_home, OPENBLAS_NUM_THREADS="1"),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        # One CPU, so llama.cpp uses one thread (see conftest's `one_thread`); strace
        # follows anyway.
        preexec_fn=(lambda: os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}))
        if hasattr(os, "sched_setaffinity")
        else None,
    )
    if proc.returncode != 0 and "ptrace" in proc.stderr:
        pytest.skip(f"strace cannot trace here: {proc.stderr.strip()[:200]}")
    assert proc.returncode == 0, proc.stderr
    assert "encoded 20 item(s)" in proc.stdout
    calls = log.read_text()
    inet = re.findall(r"socket\(AF_INET6?\b.*|connect\(.*AF_INET6?\b.*", calls)
    assert len(inet) == 1 and inet[0].startswith("socket(AF_INET, SOCK_STREAM"), inet


def test_pull_with_hf_hub_offline_never_tries_the_network(
    localrec_home: Path, monkeypatch: pytest.MonkeyPatch, network_attempts: list[str]
) -> None:
    downloads: list[dict[str, Any]] = []
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr("huggingface_hub.hf_hub_download", lambda **kw: downloads.append(kw))
    result = invoke("models", "pull", "bge-small-en-v1.5")
    assert_clean(result, 1)
    assert "HF_HUB_OFFLINE is set, so bge-small-en-v1.5 cannot be downloaded" in result.stderr
    assert "unset HF_HUB_OFFLINE" in result.stderr and "localrec models add PATH" in result.stderr
    assert downloads == [] and network_attempts == []
    assert not (localrec_home / "models").exists() or not any((localrec_home / "models").iterdir())


TELEMETRY_PROBE = """
import json, os, socket
attempts = []
def refuse(*args, **kwargs):
    attempts.append(repr(args))
    raise OSError("blocked")
socket.socket.connect = refuse
socket.create_connection = refuse
import localrec.models.cache as mc
import huggingface_hub
from huggingface_hub import constants
state = {"env": os.environ.get("HF_HUB_DISABLE_TELEMETRY"),
         "token_env": os.environ.get("HF_HUB_DISABLE_IMPLICIT_TOKEN"),
         "on_import": constants.HF_HUB_DISABLE_TELEMETRY}
def broken(**kwargs):
    raise ValueError("no hub here")
huggingface_hub.hf_hub_download = broken
try:
    mc.pull_model("bge-small-en-v1.5")
except Exception as exc:
    state["error"] = type(exc).__name__
state["after_pull"] = constants.HF_HUB_DISABLE_TELEMETRY
state["attempts"] = attempts
print(json.dumps(state))
"""


def test_hub_telemetry_is_off(localrec_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """In a fresh interpreter (nothing imported yet, no HF_* variables), importing
    localrec.models.cache turns telemetry off before huggingface-hub reads it, and a pull
    attempt leaves it off."""
    env = subprocess_env(localrec_home)
    for key in ("HF_HUB_OFFLINE", "HF_HUB_DISABLE_TELEMETRY", "HF_HUB_DISABLE_IMPLICIT_TOKEN"):
        env.pop(key, None)
    proc = subprocess.run(
        [sys.executable, "-c", TELEMETRY_PROBE],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    state = json.loads(proc.stdout.strip().splitlines()[-1])
    assert state == {
        "env": "1",
        "token_env": "1",
        "on_import": True,
        "error": "ModelNotFound",
        "after_pull": True,
        "attempts": [],
    }
    # And in this process, after a pull attempt through the CLI.
    from huggingface_hub import constants

    monkeypatch.setattr("huggingface_hub.hf_hub_download", _raise_value_error)
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_TELEMETRY", False)
    assert_clean(invoke("models", "pull", "bge-small-en-v1.5"), 1)
    assert constants.HF_HUB_DISABLE_TELEMETRY is True  # forced on by the download itself


def _raise_value_error(**kwargs: Any) -> str:
    raise ValueError("revision not found")
