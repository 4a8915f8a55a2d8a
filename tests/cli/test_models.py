"""`localrec models …` and `localrec embed` through click's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from localrec.cli.main import cli
from tests.conftest import FIXTURES


def run(*args: str, input: str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), input=input)
    return result.exit_code, result.stdout, result.stderr


def test_models_list_json(model_home: Path) -> None:
    code, out, _ = run("models", "list", "--json")
    assert code == 0
    rows = {row["name"]: row for row in json.loads(out)}
    assert rows["all-minilm-l6-v2"]["default"] is True
    assert rows["all-minilm-l6-v2"]["dim"] == 384
    assert rows["all-minilm-l6-v2"]["path"].endswith("all-minilm-l6-v2.gguf")
    assert rows["bge-small-en-v1.5"]["path"] is None
    assert sum(row["default"] for row in rows.values()) == 1


def test_models_list_table(model_home: Path) -> None:
    code, out, _ = run("models", "list")
    assert code == 0
    assert "all-minilm-l6-v2 *" in out and "multilingual-e5-small" in out


def test_models_info(model_home: Path) -> None:
    code, out, _ = run("models", "info", "--json")
    assert code == 0
    info = json.loads(out)
    assert info["architecture"] == "bert" and info["pooling"] == "mean"
    assert info["context_length"] == 512 and info["embedding_length"] == 384


def test_embed_json_matches_the_reference(model_home: Path) -> None:
    sentences = json.loads((FIXTURES / "reference_sentences.json").read_text("utf-8"))[:3]
    reference = np.load(FIXTURES / "minilm_reference.npy")[:3]
    code, out, _ = run("embed", "--json", *sentences)
    assert code == 0
    vectors = np.asarray(json.loads(out))
    assert vectors.shape == (3, 384)
    assert (vectors * reference).sum(axis=1).min() > 0.998


def test_embed_reads_stdin(model_home: Path) -> None:
    code, out, _ = run("embed", "--json", input="green tea\n\ncast iron pan\n")
    assert code == 0
    assert len(json.loads(out)) == 2


def test_embed_writes_npy(model_home: Path, tmp_path: Path) -> None:
    target = tmp_path / "v.npy"
    code, _, err = run("embed", "--npy", str(target), "one", "two")
    assert code == 0 and "wrote 2 x 384" in err
    assert np.load(target).shape == (2, 384)


def test_embed_reports_truncation(model_home: Path) -> None:
    code, _, err = run("embed", "--json", "word " * 600)
    assert code == 0 and "1 text(s) were longer than 256 tokens" in err


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["embed", "--model", "nope", "x"], 1, "unknown model 'nope'; known models:"),
        (
            ["embed", "--model", "bge-small-en-v1.5", "x"],
            1,
            "localrec models pull bge-small-en-v1.5",
        ),
        (["embed", ""], 1, "text #1 is empty"),
        (["models", "convert", ".", "--type", "q4"], 2, "'q4' is not one of 'f16', 'q8_0'"),
        (["models", "pull", "../../etc/passwd"], 1, "unknown model '../../etc/passwd'"),
        (["models", "add", "/no/such/file.gguf"], 2, "does not exist"),
        (["models", "info", "nope"], 1, "unknown model 'nope'"),
        # Output paths are checked before the work, not after it.
        (["embed", "--npy", "/no/such/dir/x.npy", "x"], 2, "the directory /no/such/dir does"),
    ],
)
def test_errors_are_one_line_with_the_right_exit_code(
    model_home: Path, args: list[str], code: int, message: str
) -> None:
    exit_code, out, err = run(*args)
    assert exit_code == code
    assert message in err
    assert "Traceback" not in err + out


def test_convert_command_builds_f16(tmp_path: Path) -> None:
    from localrec.models.cache import _offline_checkpoint
    from localrec.models.registry import load_registry

    checkpoint = _offline_checkpoint(load_registry().get())
    assert checkpoint is not None
    out_file = tmp_path / "m.gguf"
    code, out, _ = run(
        "models", "convert", str(checkpoint), "--type", "f16", "--out", str(out_file)
    )
    assert code == 0 and "bert, 384 dims, mean pooling" in out
    assert out_file.exists()


def test_convert_refuses_a_non_bert_directory(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llama"}))
    code, _, err = run("models", "convert", str(tmp_path), "--out", str(tmp_path / "x.gguf"))
    assert code == 1 and "is not 'bert'" in err


def test_embed_file_that_is_not_utf8(model_home: Path, tmp_path: Path) -> None:
    path = tmp_path / "latin1.txt"
    path.write_bytes(b"gr\xfcner tee\n")
    code, out, err = run("embed", "--file", str(path))
    assert code == 1 and "latin1.txt: not UTF-8 text (byte 2" in err
    assert "Traceback" not in err + out


@pytest.mark.parametrize("content", ["[1, 2]", '["x"]', "[null]"])
def test_a_user_registry_of_the_wrong_shape_is_named(model_home: Path, content: str) -> None:
    from localrec.models.registry import user_registry_path

    user_registry_path().write_text(content, encoding="utf-8")
    code, out, err = run("models", "list")
    assert code == 1 and "user_models.json: entry #1: expected a table of model fields" in err
    assert "Traceback" not in err + out


def test_a_damaged_pulled_model_is_named_as_such(model_home: Path) -> None:
    gguf = model_home / "models" / "all-minilm-l6-v2.gguf"
    head = gguf.read_bytes()[:4096]
    gguf.unlink()  # a symlink to the session's model: replace it, never write through it
    gguf.write_bytes(head)
    code, out, err = run("embed", "green tea")
    assert code == 1 and "all-minilm-l6-v2.gguf is not the file that was pulled" in err
    assert "run `localrec models pull all-minilm-l6-v2` to fetch it again" in err
    assert "Traceback" not in err + out


def test_a_changed_user_model_is_refused(model_home: Path, tmp_path: Path) -> None:
    import shutil

    own = tmp_path / "mine.gguf"
    shutil.copy(model_home / "models" / "all-minilm-l6-v2.gguf", own)
    assert run("models", "add", str(own), "--name", "mine")[0] == 0
    with open(own, "ab") as fh:
        fh.write(b"\0" * 64)
    code, out, err = run("embed", "--model", "mine", "green tea")
    assert code == 1 and "has changed since it was added" in err
    assert "Traceback" not in err + out


@pytest.mark.parametrize("name", ["", "  "])
def test_models_add_with_an_empty_name_is_refused(model_home: Path, name: str) -> None:
    gguf = model_home / "models" / "all-minilm-l6-v2.gguf"
    code, out, err = run("models", "add", str(gguf), "--name", name)
    assert code == 1 and "--name is empty" in err and "Traceback" not in err + out
