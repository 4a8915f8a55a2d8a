"""Model names cannot leave the model cache: names that try to traverse, hide or inject are
refused by `safe_model_filename` and by every `models` command, and nothing is written."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from localrec.errors import InputError
from localrec.paths import models_dir, safe_model_filename
from tests.helpers import (
    FUZZ_RUNS,
    assert_clean,
    fuzz,
    fuzz_report,
    invoke,
)

ESCAPES = (
    "../../etc/passwd",
    "..",
    ".",
    "../x",
    "/etc/passwd",
    "a/../../b",
    "..\\..\\windows\\system32",
    "~/.ssh/id_rsa",
    "%2e%2e%2fetc%2fpasswd",
    "x\x00y",
    ".hidden",
    "-rf",
    "a" * 65,
    "ａｂｃ",  # fullwidth letters
    "model.gguf/../../x",
    "",
)


@pytest.mark.parametrize("name", ESCAPES)
def test_safe_model_filename_refuses(name: str, localrec_home: Path) -> None:
    with pytest.raises(InputError, match="invalid model name"):
        safe_model_filename(name)


def test_fuzz_safe_model_filename_stays_in_the_cache(localrec_home: Path) -> None:
    """Any accepted name maps to a file directly inside the model cache."""

    @fuzz(300)
    @given(name=st.one_of(st.text(max_size=70), st.sampled_from(ESCAPES)))
    def prop(name: str) -> None:
        FUZZ_RUNS["model names"] += 1
        try:
            path = safe_model_filename(name)
        except InputError:
            return
        FUZZ_RUNS["model names accepted"] += 1
        cache = models_dir().resolve()
        assert path.parent == models_dir()
        assert path.resolve().parent == cache
        assert "/" not in path.name and "\\" not in path.name and ".." not in path.name

    prop()
    fuzz_report("model names", 300)


@pytest.mark.parametrize("name", [n for n in ESCAPES[:12] if "\x00" not in n])  # argv: no NUL
def test_models_commands_refuse_escaping_names(
    name: str, localrec_home: Path, tmp_path: Path, tiny_embedding_gguf: Path
) -> None:
    """pull, info and add --name: exit 1 with a clear message, and nothing is written
    anywhere (no user registry entry, no file at the traversed location)."""
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    for args in (["models", "pull", "--", name], ["models", "info", "--", name]):
        result = invoke(*args)
        assert_clean(result, 1)
        assert f"unknown model {name!r}" in result.stderr
    result = invoke("models", "add", str(tiny_embedding_gguf), f"--name={name}")
    assert_clean(result, 1)
    assert "name must be lowercase letters, digits" in result.stderr
    assert not (localrec_home / "user_models.json").exists()
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


@pytest.mark.parametrize("where", ["safe_model_filename", "models add --name"])
def test_a_trailing_newline_is_not_a_valid_model_name(
    where: str, localrec_home: Path, tiny_embedding_gguf: Path
) -> None:
    if where == "safe_model_filename":
        with pytest.raises(InputError):
            safe_model_filename("abc\n")
    else:
        assert_clean(invoke("models", "add", str(tiny_embedding_gguf), "--name", "abc\n"), 1)
