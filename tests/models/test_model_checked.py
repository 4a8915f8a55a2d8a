"""A model file damaged without a change of size is refused before use, `models pull`
replaces it, the check is remembered while the file is unchanged, a damaged F16 twin is
dropped, and an encoder never returns a vector that is not finite and of unit length."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.conftest import DEFAULT_MODEL
from tests.helpers import assert_clean, invoke

# Where the damage was: 64 KiB XOR-ed at 20,000,000 bytes of the 25 MB Q8_0 file.
OFFSET, LENGTH = 20_000_000, 64 * 1024


def _own_copy(link: Path) -> Path:
    """Replace a symlink to the session's file by a copy this test may damage."""
    target = link.resolve()
    link.unlink()
    shutil.copy(target, link)
    return link


def _damage(path: Path) -> None:
    size = path.stat().st_size
    with open(path, "r+b") as fh:
        fh.seek(OFFSET)
        block = bytearray(fh.read(LENGTH))
        fh.seek(OFFSET)
        fh.write(bytes(b ^ 0x5A for b in block))
    assert path.stat().st_size == size


@pytest.fixture
def model_file(model_home: Path) -> Path:
    return _own_copy(model_home / "models" / f"{DEFAULT_MODEL}.gguf")


def test_a_model_damaged_in_place_is_refused_and_pull_replaces_it(
    model_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from localrec.errors import ModelFileError
    from localrec.models.cache import resolve_model
    from localrec.models.gguf import sha256_file

    good = sha256_file(model_file)
    _damage(model_file)
    with pytest.raises(ModelFileError, match=r"is not the expected .*models pull"):
        resolve_model(DEFAULT_MODEL)
    result = invoke("embed", "green tea")
    assert_clean(result, 1)
    assert str(model_file) in result.stderr and "damaged or changed in place" in result.stderr

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    result = invoke("models", "pull")
    assert_clean(result, 0)
    assert "is damaged" in result.stdout + result.stderr
    assert sha256_file(model_file) == good
    assert resolve_model(DEFAULT_MODEL)[1] == model_file
    result = invoke("embed", "green tea")
    assert_clean(result, 0)


def test_an_unchanged_file_is_hashed_once(
    model_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The verified (size, mtime, inode) is remembered: the next use costs a stat, and a
    new mtime means a new hash."""
    import localrec.models.verify as verify
    from localrec.models.cache import resolve_model

    calls: list[Path] = []
    real = verify.sha256_file  # type: ignore[attr-defined]

    def counted(path: Path) -> str:
        calls.append(path)
        return real(path)

    monkeypatch.setattr(verify, "sha256_file", counted)
    resolve_model(DEFAULT_MODEL)
    resolve_model(DEFAULT_MODEL)
    assert calls == [model_file]
    stat = model_file.stat()
    os.utime(model_file, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    resolve_model(DEFAULT_MODEL)
    assert calls == [model_file, model_file]


def test_a_damaged_twin_is_dropped_for_the_file_it_was_built_from(model_home: Path) -> None:
    from localrec.embedding.f16_twin import runtime_choice, runtime_path
    from localrec.models.cache import resolve_model

    spec, path = resolve_model(DEFAULT_MODEL)
    twin = runtime_path(path, spec)
    if twin == path:
        pytest.skip("the F16 twin was not faster on this machine, so there is none")
    _own_copy(twin)
    assert runtime_path(path, spec) == twin  # intact: used
    _damage(twin)
    assert runtime_path(path, spec) == path
    assert not twin.exists() and runtime_choice(path) is None


def test_an_encoder_of_a_damaged_file_gives_an_error_not_nan(model_file: Path) -> None:
    from localrec.embedding.llama_encoder import LlamaEncoder
    from localrec.errors import EncoderError
    from localrec.models.registry import load_registry

    _damage(model_file)
    spec = load_registry(include_user=False).get(DEFAULT_MODEL)
    with (
        LlamaEncoder(model_file, spec) as encoder,
        pytest.raises(EncoderError, match=r"not finite and of unit length for text #1"),
    ):
        encoder.encode(["green tea", "a teapot"])
