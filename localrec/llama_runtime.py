"""Process-wide llama.cpp set-up: backend initialisation, a quiet logger and the thread count."""

from __future__ import annotations

import ctypes
import logging
import os
import sys
import threading
from pathlib import Path
from typing import Any

__all__ = ["ensure_backend", "physical_cores", "set_llama_verbose"]

logger = logging.getLogger("localrec.llama")

# ggml's enum ggml_log_level. llama-cpp-python 0.3.36 maps these as if WARN were ERROR,
# so its verbose=False still prints warnings; this table is the one in ggml.h.
_GGML_LEVELS = {1: logging.DEBUG, 2: logging.INFO, 3: logging.WARNING, 4: logging.ERROR}
_GGML_LEVEL_CONT = 5

_lock = threading.Lock()
_initialised = False
_verbose = False
_last_level = logging.DEBUG
_callback: Any = None  # kept referenced: ctypes callbacks must outlive their C registration


def _log(level: int, text: bytes, user_data: Any) -> None:
    global _last_level
    py_level = _last_level if level == _GGML_LEVEL_CONT else _GGML_LEVELS.get(level, logging.DEBUG)
    _last_level = py_level
    if _verbose:
        sys.stderr.write(text.decode("utf-8", errors="replace"))
    elif py_level >= logging.ERROR:
        logger.debug("llama.cpp: %s", text.decode("utf-8", errors="replace").rstrip())


def set_llama_verbose(verbose: bool) -> None:
    """Let llama.cpp's own log through to stderr (off by default)."""
    global _verbose
    _verbose = verbose


def ensure_backend() -> None:
    """Import llama.cpp, install the quiet logger and initialise the backend, once."""
    global _initialised, _callback
    with _lock:
        if _initialised:
            return
        import llama_cpp

        _callback = llama_cpp.llama_log_callback(_log)
        llama_cpp.llama_log_set(_callback, ctypes.c_void_p(0))
        llama_cpp.llama_backend_init()
        _initialised = True


def physical_cores() -> int:
    """Physical cores this process may use; hyper-threads slow llama.cpp's matmuls down."""
    try:
        allowed = sorted(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        allowed = list(range(os.cpu_count() or 1))
    cores: set[str] = set()
    for cpu in allowed:
        siblings = Path(f"/sys/devices/system/cpu/cpu{cpu}/topology/thread_siblings_list")
        try:
            cores.add(siblings.read_text().strip())
        except OSError:
            return max(1, len(allowed))
    return max(1, len(cores))
