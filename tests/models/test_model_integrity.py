"""Untrusted model files: hostile GGUF headers are refused with a clear error in a live process
(a crash would show as a signal), a GGUF that passes the header check but that llama.cpp
cannot load ends in an error too, and a download whose sha256 is not the pinned one never
reaches the cache.

Files that could crash a process (hostile headers, llama.cpp loads) are opened in child
processes, so that a crash shows up as a signal, not a dead pytest."""

from __future__ import annotations

import json
import os
import re
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import DEFAULT_MODEL
from tests.fakes import write_tiny_gguf
from tests.helpers import (
    assert_clean,
    invoke,
    run_localrec,
    subprocess_env,
)


def _u32(n: int) -> bytes:
    return struct.pack("<I", n)


def _u64(n: int) -> bytes:
    return struct.pack("<Q", n)


def _gstr(text: str | bytes) -> bytes:
    data = text.encode() if isinstance(text, str) else text
    return _u64(len(data)) + data


def _kv_str(key: str, value: str) -> bytes:
    return _gstr(key) + _u32(8) + _gstr(value)


def _header(n_tensors: int, n_kv: int, body: bytes, pad: int = 256) -> bytes:
    return b"GGUF" + _u32(3) + _u64(n_tensors) + _u64(n_kv) + body + b"\0" * pad


BERT = _kv_str("general.architecture", "bert")


def _tensor(name: str, dims: list[int], ggml_type: int = 0, offset: int = 0) -> bytes:
    return (
        _gstr(name) + _u32(len(dims)) + b"".join(map(_u64, dims)) + _u32(ggml_type) + _u64(offset)
    )


def _nested_arrays(depth: int) -> bytes:
    return _gstr("a") + _u32(9) + (_u32(9) + _u64(1)) * depth + _u32(4) + _u64(0)


# name -> (file bytes, or a builder taking the real model's bytes; expected message)
HOSTILE_GGUFS: dict[str, tuple[Any, str]] = {
    "not gguf": (b"PK\x03\x04 definitely a zip", "not a GGUF file"),
    "empty": (b"", "not a GGUF file"),
    "magic only": (b"GGUF", "truncated GGUF header"),
    "version 1": (b"GGUF" + _u32(1) + b"\0" * 64, "unsupported GGUF version 1"),
    "2^60 tensors": (_header(1 << 60, 0, b""), "more than the file holds"),
    "2^60 keys": (_header(0, 1 << 60, b""), "more than the file holds"),
    "2^62-byte string": (_header(0, 1, _u64(1 << 62) + b"k"), "more than the file holds"),
    "2^61-item array": (
        _header(0, 1, _gstr("a") + _u32(9) + _u32(10) + _u64(1 << 61)),
        "more than the file holds",
    ),
    "array bytes": (
        _header(0, 1, _gstr("a") + _u32(9) + _u32(10) + _u64(100)),
        "an array claims 800 bytes",
    ),
    "unknown value type": (_header(0, 1, _gstr("a") + _u32(77)), "unknown GGUF value type 77"),
    "2^31 dimensions": (
        _header(1, 1, BERT + _gstr("t") + _u32(1 << 31)),
        "claims 2147483648 dimensions",
    ),
    "2^320 elements": (_header(1, 1, BERT + _tensor("t", [1 << 40] * 8)), "elements; refused"),
    "tensor beyond the file": (
        _header(1, 1, BERT + _tensor("t", [16], offset=1 << 50)),
        "truncated: tensor 't'",
    ),
    "unknown tensor type": (_header(1, 1, BERT + _tensor("t", [16], 99)), "unknown type 99"),
    "no architecture": (_header(0, 0, b""), "no general.architecture"),
    "truncated to 4 kB": (lambda real: real[:4096], "30522 array items, more than the file"),
    "truncated to half": (lambda real: real[: len(real) // 2], "truncated"),
    "last byte missing": (lambda real: real[:-1], "truncated"),
    "generative llama": ("llama", "architecture 'llama' with pooling unset is not an embedding"),
    "bert without pooling": ("bert-none", "with pooling none is not an embedding model"),
}
# Found here: these reach Python exceptions that localrec does not turn into ModelFileError.
HOSTILE_GGUF_BUGS: dict[str, bytes] = {
    "arrays nested 5000 deep (RecursionError)": _header(0, 1, _nested_arrays(5000)),
    "alignment is a string (ValueError)": _header(0, 2, BERT + _kv_str("general.alignment", "abc")),
    "alignment is NaN (ValueError)": _header(
        0, 2, BERT + _gstr("general.alignment") + _u32(6) + struct.pack("<f", float("nan"))
    ),
    "alignment is infinite (OverflowError)": _header(
        0, 2, BERT + _gstr("general.alignment") + _u32(12) + struct.pack("<d", float("inf"))
    ),
}


# One interpreter imports the CLI once, then runs `localrec models add FILE` for each file in
# a forked child of its own and reports the child's exit status: a crash in C or an
# allocation that kills the process would be a signal (a negative status), and only the
# child would die. One start-up instead of one per file keeps this file fast.
FORK_DRIVER = r"""
import json, os, sys, tempfile, traceback
from localrec.cli.main import cli
results = {}
for name, path in json.loads(sys.argv[1]).items():
    out = tempfile.TemporaryFile()
    pid = os.fork()
    if pid == 0:
        os.dup2(out.fileno(), 1)
        os.dup2(out.fileno(), 2)
        code = 0
        try:
            cli.main(["models", "add", path], prog_name="localrec")
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except BaseException:
            traceback.print_exc()  # what Python itself does with an uncaught exception
            code = 1
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    out.seek(0)
    results[name] = [os.waitstatus_to_exitcode(status), out.read().decode("utf-8", "replace")]
print(json.dumps(results))
"""


@pytest.fixture(scope="module")
def hostile_gguf_runs(
    tmp_path_factory: pytest.TempPathFactory, pulled_home: Path
) -> dict[str, tuple[int, str]]:
    """(exit status, output) of `localrec models add FILE` for every hostile file."""
    if not hasattr(os, "fork"):
        pytest.skip("needs os.fork")
    directory = tmp_path_factory.mktemp("hostile-gguf")
    home = tmp_path_factory.mktemp("hostile-home")
    real = (pulled_home / "models" / f"{DEFAULT_MODEL}.gguf").read_bytes()
    files: dict[str, str] = {}
    for n, (name, (spec, _)) in enumerate(
        [*HOSTILE_GGUFS.items(), *((k, (v, "")) for k, v in HOSTILE_GGUF_BUGS.items())]
    ):
        path = directory / f"hostile-{n}.gguf"
        if spec == "llama":
            write_tiny_gguf(path, "llama", None)
        elif spec == "bert-none":
            write_tiny_gguf(path, "bert", 0)
        else:
            path.write_bytes(spec(real) if callable(spec) else spec)
        files[name] = str(path)
    proc = subprocess.run(
        [sys.executable, "-c", FORK_DRIVER, json.dumps(files)],
        env=subprocess_env(home),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert not (home / "user_models.json").exists()
    runs: dict[str, tuple[int, str]] = {
        name: (status, output) for name, (status, output) in json.loads(proc.stdout).items()
    }
    return runs


@pytest.mark.parametrize("name", list(HOSTILE_GGUFS))
def test_hostile_gguf_is_refused_in_a_live_process(
    name: str, hostile_gguf_runs: dict[str, tuple[int, str]]
) -> None:
    status, output = hostile_gguf_runs[name]
    assert status == 1, (status, output[-2000:])
    assert "Traceback" not in output
    assert output.startswith("Error: ") and HOSTILE_GGUFS[name][1] in output


@pytest.mark.parametrize("name", list(HOSTILE_GGUF_BUGS))
def test_hostile_gguf_bugs(name: str, hostile_gguf_runs: dict[str, tuple[int, str]]) -> None:
    status, output = hostile_gguf_runs[name]
    assert status == 1, (status, output[-500:])  # not a signal: the process survives
    assert "Traceback" not in output, output[-500:]


def test_a_gguf_that_passes_the_header_check_is_refused_by_llama_cpp(
    localrec_home: Path, tiny_embedding_gguf: Path
) -> None:
    """A tiny 'bert' without weights or vocabulary gets past the header check; loading it
    must still end in a clear error (exit 1), not in a crash of the process."""
    added = run_localrec(
        ["models", "add", str(tiny_embedding_gguf), "--name", "tiny"], localrec_home
    )
    assert added.returncode == 0, added.stderr
    assert "added tiny: 8 dims, mean pooling" in added.stdout
    proc = run_localrec(["embed", "--model", "tiny", "hello"], localrec_home)
    assert proc.returncode == 1, (proc.returncode, proc.stderr[-2000:])
    assert "llama.cpp could not load this GGUF" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("payload", ["real model", "truncated", "hostile header"])
def test_a_download_with_the_wrong_sha256_is_refused_and_removed(
    payload: str,
    localrec_home: Path,
    monkeypatch: pytest.MonkeyPatch,
    pulled_home: Path,
    network_attempts: list[str],
) -> None:
    """Whatever the hub sends, a file that is not the pinned one never reaches the cache,
    and its header is not even parsed (the hash comes first)."""
    real = (pulled_home / "models" / f"{DEFAULT_MODEL}.gguf").read_bytes()
    content = {
        "real model": real,
        "truncated": real[:1000],
        "hostile header": HOSTILE_GGUF_BUGS["arrays nested 5000 deep (RecursionError)"],
    }[payload]
    calls: list[dict[str, Any]] = []

    def fake_download(*, local_dir: Path, filename: str, **kwargs: Any) -> str:
        calls.append(kwargs)
        target = Path(local_dir) / filename
        target.write_bytes(content)
        return str(target)

    monkeypatch.setattr("huggingface_hub.hf_hub_download", fake_download)
    result = invoke("models", "pull", "bge-small-en-v1.5")
    assert_clean(result, 1)
    assert "does not match the registry's" in result.stderr
    assert "the file was refused and removed" in result.stderr
    assert len(calls) == 1 and re.fullmatch(r"[0-9a-f]{40}", calls[0]["revision"])
    assert list((localrec_home / "models").iterdir()) == []
    assert network_attempts == []
