"""Where localrec keeps its files: the home directory, the model cache and the default database."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

from localrec.errors import InputError

__all__ = ["as_path", "default_db_path", "home_dir", "models_dir", "safe_model_filename"]

_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def as_path(value: object, what: str) -> Path:
    """`value` as a Path: a Python caller's int or None for a path is an InputError, as the
    CLI's would be, not a TypeError from deep inside."""
    if (isinstance(value, str) and value.strip()) or isinstance(value, os.PathLike):
        try:
            return Path(value)
        except TypeError:  # a PathLike of bytes
            pass
    raise InputError(f"{what} must be a path (a str or pathlib.Path), got {value!r:.60}")


def home_dir() -> Path:
    """`$LOCALREC_HOME`, else the platform's per-user data directory."""
    env = os.environ.get("LOCALREC_HOME")
    if env:
        return Path(env).expanduser()
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "localrec"


def models_dir() -> Path:
    return home_dir() / "models"


def default_db_path() -> Path:
    """`$LOCALREC_DB`, else `localrec.db` in the home directory."""
    env = os.environ.get("LOCALREC_DB")
    if env:
        return Path(env).expanduser()
    return home_dir() / "localrec.db"


def safe_model_filename(name: str, suffix: str = ".gguf") -> Path:
    """The cache path for a model name; refuses names that could leave the cache directory."""
    if not _SAFE_NAME.fullmatch(name) or ".." in name:
        raise InputError(
            f"invalid model name {name!r}: use 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    directory = models_dir()
    path = directory / f"{name}{suffix}"
    # The name pattern already rules out separators; this guards the pattern itself.
    if path.parent != directory or path.name != f"{name}{suffix}":
        raise InputError(f"invalid model name {name!r}: it would leave {directory}")
    return path
