"""The F16 twin of a Q8_0 model: built once, used only where measured faster, exact enough."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from localrec.embedding import f16_twin as fast_weights
from localrec.embedding.f16_twin import runtime_choice, runtime_dir, runtime_path
from localrec.embedding.llama_encoder import LlamaEncoder
from localrec.models.registry import ModelSpec, load_registry

FIXTURES = Path(__file__).parent.parent / "fixtures"


@pytest.fixture
def spec() -> ModelSpec:
    return load_registry(include_user=False).get()


@pytest.fixture
def q8_file(built_models: dict[str, Path], localrec_home: Path) -> Path:
    """A private copy of the Q8_0 model, so each test decides afresh."""
    path = localrec_home / "mine.gguf"
    shutil.copy(built_models["q8_0"], path)
    return path


def _timed(monkeypatch: pytest.MonkeyPatch, q8: float, f16: float) -> None:
    rates = {"q8_0": q8, "f16": f16}
    monkeypatch.setattr(
        fast_weights,
        "_texts_per_second",
        lambda path, spec: rates["f16" if path.name.endswith(".f16.gguf") else "q8_0"],
    )


@pytest.mark.parametrize(
    ("q8", "f16", "use"),
    [(100.0, 150.0, "f16"), (100.0, 111.0, "f16"), (100.0, 105.0, "q8_0"), (100.0, 80.0, "q8_0")],
)
def test_the_twin_is_used_only_where_clearly_faster(
    q8_file: Path, spec: ModelSpec, monkeypatch: pytest.MonkeyPatch, q8: float, f16: float, use: str
) -> None:
    _timed(monkeypatch, q8, f16)
    chosen = runtime_path(q8_file, spec)
    choice = runtime_choice(q8_file)
    assert choice is not None
    assert choice["use"] == use and choice["texts_per_s"] == {"q8_0": q8, "f16": f16}
    twins = sorted(p.name for p in runtime_dir().glob("*.f16.gguf"))
    if use == "f16":
        assert chosen.parent == runtime_dir() and twins == [chosen.name]
    else:
        assert chosen == q8_file and twins == []  # a slower twin is not kept
    # Nothing half-written is left behind.
    assert not [p for p in runtime_dir().iterdir() if p.name.startswith(".")]


def test_the_decision_is_made_once(
    q8_file: Path, spec: ModelSpec, monkeypatch: pytest.MonkeyPatch
) -> None:
    _timed(monkeypatch, 100.0, 150.0)
    first = runtime_path(q8_file, spec)

    def refuse(*args: object) -> None:
        raise AssertionError("decided again")

    monkeypatch.setattr(fast_weights, "_decide", refuse)
    assert runtime_path(q8_file, spec) == first


def test_a_changed_file_gets_a_new_twin_and_the_old_one_goes(
    q8_file: Path, spec: ModelSpec, monkeypatch: pytest.MonkeyPatch
) -> None:
    _timed(monkeypatch, 100.0, 150.0)
    first = runtime_path(q8_file, spec)
    os.utime(q8_file, ns=(1_000_000_000, 1_000_000_000))  # as after a fresh pull
    second = runtime_path(q8_file, spec)
    assert second != first and second.is_file() and not first.exists()
    # one twin, its record, and the record of its last sha256 check
    assert len(list(runtime_dir().iterdir())) == 3


def test_a_failed_build_falls_back_to_the_file_and_leaves_nothing(
    q8_file: Path, spec: ModelSpec, monkeypatch: pytest.MonkeyPatch
) -> None:
    import llama_cpp

    def disk_full(src: bytes, dst: bytes, params: object) -> int:
        Path(os.fsdecode(dst)).write_bytes(b"GGUF half a file")
        return 1  # llama.cpp's quantizer gave up halfway

    monkeypatch.setattr(llama_cpp, "llama_model_quantize", disk_full)
    assert runtime_path(q8_file, spec) == q8_file
    assert runtime_choice(q8_file) is None  # tried again next time
    assert list(runtime_dir().iterdir()) == []


def test_float_files_are_loaded_as_they_are(
    built_models: dict[str, Path], spec: ModelSpec, localrec_home: Path
) -> None:
    assert runtime_path(built_models["f16"], spec) == built_models["f16"]
    assert not runtime_dir().exists()


def test_the_real_twin_is_closer_to_the_reference_and_batch_independent(
    q8_file: Path, spec: ModelSpec, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Built by llama.cpp for real: min cosine to sentence-transformers on the 53 reference
    sentences 0.99948 (the Q8_0 file: 0.99909), and a text alone gets its in-batch vector
    without the filler sequence the Q8_0 kernels need."""
    _timed(monkeypatch, 100.0, 150.0)  # the build is real; only the timing is fixed
    twin = runtime_path(q8_file, spec)
    texts = json.loads((FIXTURES / "reference_sentences.json").read_text(encoding="utf-8"))
    texts = [t if isinstance(t, str) else t["text"] for t in texts]
    reference = np.load(FIXTURES / "minilm_reference.npy")
    with LlamaEncoder(twin, spec) as encoder, LlamaEncoder(q8_file, spec) as q8:
        assert encoder.info.file_type == "MOSTLY_F16" and not encoder._filler
        vectors = encoder.encode(texts)
        alone = np.vstack([encoder.encode([t]) for t in texts[:12]])
        q8_cos = (q8.encode(texts) * reference).sum(axis=1)
    cos = (vectors * reference).sum(axis=1)
    assert cos.min() >= 0.9994 and cos.min() > q8_cos.min()
    assert (alone * vectors[:12]).sum(axis=1).min() >= 0.99999


def test_open_encoder_uses_the_twin_unless_asked_for_the_file(
    model_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from localrec.embedding.loader import open_encoder

    choice = runtime_choice(model_home / "models" / "all-minilm-l6-v2.gguf")
    assert choice is not None  # decided once for the session's model (conftest)
    with open_encoder() as encoder:
        expected = "MOSTLY_F16" if choice["use"] == "f16" else "MOSTLY_Q8_0"
        assert encoder.info.file_type == expected
    with open_encoder(exact_weights=True) as encoder:
        assert encoder.info.file_type == "MOSTLY_Q8_0"


def test_models_info_says_which_form_runs(model_home: Path) -> None:
    from click.testing import CliRunner

    from localrec.cli.main import cli

    result = CliRunner().invoke(cli, ["models", "info", "--json"])
    assert result.exit_code == 0, result.output
    runs_as = json.loads(result.output)["runs_as"]
    choice = runtime_choice(model_home / "models" / "all-minilm-l6-v2.gguf")
    assert choice is not None
    rates = choice["texts_per_s"]
    assert f"{rates['f16']} against {rates['q8_0']} texts/s" in runs_as
    assert runs_as.startswith("its F16 twin" if choice["use"] == "f16" else "the file as it is")


def test_files_left_by_a_killed_build_are_cleared_later(
    q8_file: Path, spec: ModelSpec, monkeypatch: pytest.MonkeyPatch
) -> None:
    _timed(monkeypatch, 100.0, 80.0)
    runtime_dir().mkdir(parents=True)
    stale, fresh = runtime_dir() / ".twin-old.gguf", runtime_dir() / ".twin-busy.gguf"
    for leftover in (stale, fresh):
        leftover.write_bytes(b"GGUF half a file")
    os.utime(stale, (1_000_000_000, 1_000_000_000))
    runtime_path(q8_file, spec)
    assert not stale.exists() and fresh.exists()  # another process may still be writing it
