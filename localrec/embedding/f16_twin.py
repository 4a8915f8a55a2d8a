"""A Q8_0 model's F16 twin, used instead of it where llama.cpp runs it faster.

llama.cpp multiplies Q8_0 weights by quantising the activations to 8 bits too. On this
project's 2-core AVX2 machine that ran ~25% slower than its F16 kernels on the same
weights, and further from the original model (min cosine to sentence-transformers 0.99909
against 0.99948 for the twin, on the 53 reference sentences). The download stays the small
Q8_0 file. On first use the twin is built from it locally with llama.cpp's own quantizer
(the token table stays Q8_0: it is only looked up, never multiplied), both are timed on
the same texts, and the twin is kept only if it is clearly faster on this CPU. The
decision is cached beside the twin, so later loads cost nothing.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import json
import os
import re
import tempfile
import time
from pathlib import Path
from typing import Any

from localrec.errors import LocalrecError, ModelFileError
from localrec.models.gguf import read_gguf_info, sha256_file
from localrec.models.registry import ModelSpec
from localrec.models.verify import verified_path, verify_file
from localrec.paths import models_dir

__all__ = ["runtime_choice", "runtime_path", "runtime_summary"]

# The twin must be this much faster to be used: timings on a busy machine are noisy.
MIN_SPEEDUP = 1.1
# A temporary file this old was left by a process killed mid-build.
STALE_SECONDS = 600
# What is timed: short product-like texts, the bulk of a catalogue's encoding.
_PROBE_TEXTS = [
    f"{adjective} {noun} set, {n} pieces, for kitchen and home, model {n * 7}"
    for n in range(24)
    for adjective, noun in (("stainless", "steel pan"), ("organic", "green tea"))
]


def runtime_dir() -> Path:
    return models_dir() / "runtime"


def _key(path: Path) -> str:
    stat = path.stat()
    ident = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    return hashlib.sha256(ident.encode()).hexdigest()[:16]


def _twin_paths(path: Path) -> tuple[Path, Path]:
    stem = f"{path.stem}-{_key(path)}"
    return runtime_dir() / f"{stem}.f16.gguf", runtime_dir() / f"{stem}.json"


def _read_record(record: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(record.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _is_q8_0(path: Path) -> bool:
    # Reading the header costs ~75 ms for MiniLM's vocabulary: only when undecided (a
    # record exists only for a Q8_0 file).
    return read_gguf_info(path).file_type == "MOSTLY_Q8_0"


def runtime_choice(path: Path) -> dict[str, Any] | None:
    """The cached decision for the GGUF at `path` (timings, which form), or None."""
    return _read_record(_twin_paths(path)[1])


def runtime_summary(path: Path) -> str:
    """One line for `localrec models info`: which form of the file the encoder loads."""
    choice = runtime_choice(path)
    if choice is None:
        if not _is_q8_0(path):
            return "the file as it is"
        return "not decided yet: the first encode times the file against its F16 twin"
    rates = choice.get("texts_per_s", {})
    timing = f"{rates.get('f16')} against {rates.get('q8_0')} texts/s for the Q8_0 file"
    if choice.get("use") == "f16":
        return f"its F16 twin ({timing}, measured on first use)"
    return f"the file as it is (its F16 twin: {timing}, less than 10% faster, so not used)"


def runtime_path(path: Path, spec: ModelSpec) -> Path:
    """The GGUF to load for the model at `path`: its F16 twin where that was measured
    faster, else `path` itself (any other file type, or when the twin cannot be built)."""
    twin, record = _twin_paths(path)
    choice = _read_record(record)
    if choice is None:
        if not _is_q8_0(path):
            return path
        try:
            choice = _decide(path, spec, twin, record)
        except (OSError, LocalrecError):
            return path  # an optimisation only: the Q8_0 file still works
    if choice.get("use") == "f16" and twin.is_file():
        return twin if _twin_intact(twin, record, choice) else path
    return path


def _twin_intact(twin: Path, record: Path, choice: dict[str, Any]) -> bool:
    """The twin against the sha256 its build recorded. A damaged twin is removed with its
    record (the file it was built from is used, and the next first use builds it again);
    a record from before the hash was kept gets it now."""
    expected = choice.get("sha256")
    if not isinstance(expected, str):
        choice = {**choice, "sha256": sha256_file(twin)}
        with contextlib.suppress(OSError):
            _write_atomic(record, json.dumps(choice, indent=2).encode())
        return True
    try:
        verify_file(twin, expected, "it is rebuilt on the next first use")
    except ModelFileError:
        for leftover in (twin, record, verified_path(twin)):
            leftover.unlink(missing_ok=True)
        return False
    return True


def _decide(path: Path, spec: ModelSpec, twin: Path, record: Path) -> dict[str, Any]:
    twin.parent.mkdir(parents=True, exist_ok=True)
    _clear_leftovers(path, (twin, record))
    _build_twin(path, twin)
    q8_rate, f16_rate = _texts_per_second(path, spec), _texts_per_second(twin, spec)
    use = "f16" if f16_rate >= MIN_SPEEDUP * q8_rate else "q8_0"
    choice = {
        "source": str(path),
        "use": use,
        "texts_per_s": {"q8_0": round(q8_rate, 1), "f16": round(f16_rate, 1)},
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    if use == "f16":
        choice["sha256"] = sha256_file(twin)
    else:
        twin.unlink(missing_ok=True)  # not faster here: no need to keep the bytes
    _write_atomic(record, json.dumps(choice, indent=2).encode())
    return choice


def _clear_leftovers(path: Path, keep: tuple[Path, Path]) -> None:
    """Remove the twins of earlier copies of `path`, and files of builds that were killed."""
    earlier = re.compile(
        rf"{re.escape(path.stem)}-[0-9a-f]{{16}}\.(f16\.gguf|f16\.gguf\.verified|json)"
    )
    now = time.time()
    for old in keep[0].parent.iterdir():
        if earlier.fullmatch(old.name) and old not in keep:
            old.unlink(missing_ok=True)
        elif old.name.startswith((".twin-", ".record-")):
            with contextlib.suppress(FileNotFoundError):
                if now - old.stat().st_mtime > STALE_SECONDS:
                    old.unlink()


def _build_twin(src: Path, dst: Path) -> None:
    import llama_cpp

    from localrec.llama_runtime import ensure_backend, physical_cores

    ensure_backend()
    fd, tmp_name = tempfile.mkstemp(dir=dst.parent, prefix=".twin-", suffix=".gguf")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        params = llama_cpp.llama_model_quantize_default_params()
        params.ftype = llama_cpp.LLAMA_FTYPE_MOSTLY_F16
        params.allow_requantize = True
        params.token_embedding_type = llama_cpp.GGML_TYPE_Q8_0
        params.nthread = physical_cores()
        rc = llama_cpp.llama_model_quantize(
            os.fsencode(src), os.fsencode(tmp), ctypes.byref(params)
        )
        if rc != 0:
            raise OSError(f"llama.cpp could not expand {src} to F16 (code {rc})")
        os.replace(tmp, dst)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _texts_per_second(path: Path, spec: ModelSpec) -> float:
    from localrec.embedding.llama_encoder import LlamaEncoder

    with contextlib.closing(LlamaEncoder(path, spec)) as encoder:
        encoder.encode(_PROBE_TEXTS[:8])  # warm-up: first-call allocations
        best = float("inf")
        for _ in range(2):
            start = time.perf_counter()
            encoder.encode(_PROBE_TEXTS)
            best = min(best, time.perf_counter() - start)
    return len(_PROBE_TEXTS) / best


def _write_atomic(path: Path, data: bytes) -> None:
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=".record-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp_name, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
