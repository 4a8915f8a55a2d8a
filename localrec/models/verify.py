"""Model files checked against their sha256 before a process uses them.

A file damaged in place keeps its size, so the size check of the cache is not enough: the
whole file is hashed. The hash of a file whose (size, mtime_ns, inode) is unchanged since
it was last verified is remembered in a sidecar (`FILE.verified`), so a process start
costs a stat and a small read, not a read of the model.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from localrec.errors import ModelFileError
from localrec.models.gguf import sha256_file

__all__ = ["verified_path", "verify_file"]


def verified_path(path: Path) -> Path:
    """Where the record of the last successful check of `path` is kept."""
    return path.with_name(f"{path.name}.verified")


def _stamp(path: Path) -> list[int]:
    st = path.stat()
    return [st.st_size, st.st_mtime_ns, st.st_ino]


def verify_file(path: Path, expected: str, fix: str) -> None:
    """Raise ModelFileError unless the file's sha256 is `expected`; `fix` says what to run.

    Hashes the file only when it changed (size, mtime or inode) since its last check."""
    stamp = _stamp(path)
    record = verified_path(path)
    try:
        known = json.loads(record.read_text(encoding="utf-8"))
        if known == {"stamp": stamp, "sha256": expected}:
            return
    except (OSError, ValueError):
        pass
    actual = sha256_file(path)
    if actual != expected:
        raise ModelFileError(
            f"{path}: sha256 {actual[:16]}... is not the expected {expected[:16]}... "
            f"(the file was damaged or changed in place); {fix}"
        )
    _remember(record, {"stamp": stamp, "sha256": expected})


def _remember(record: Path, data: dict[str, object]) -> None:
    """Write the record atomically; in a read-only directory, skip it (each process then
    hashes the file again, which is only slower)."""
    try:
        fd, tmp = tempfile.mkstemp(dir=record.parent, prefix=f".{record.name}.")
    except OSError:
        return
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh)
        os.replace(tmp, record)
    except OSError:
        Path(tmp).unlink(missing_ok=True)
