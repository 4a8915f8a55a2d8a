"""Opening a model by name: the registered (or user-added) GGUF, as its F16 twin where that
was measured faster on this CPU."""

from __future__ import annotations

from typing import Any

from localrec.embedding.f16_twin import runtime_path
from localrec.embedding.llama_encoder import LlamaEncoder
from localrec.models.cache import resolve_model

__all__ = ["open_encoder"]


def open_encoder(
    name: str | None = None, *, exact_weights: bool = False, **options: Any
) -> LlamaEncoder:
    """Load a registered (or user-added) model by name; the default model when None.

    A Q8_0 model runs as its F16 twin where that was measured faster on this CPU (see
    `localrec.embedding.f16_twin`). Use the encoder as a context manager (or `close` it).

    Args:
        name: A model name of `localrec models list`; None for the default model. It must
            be on disk (`localrec models pull`).
        exact_weights: Load the file as it is, never its F16 twin.
        **options: Passed to `LlamaEncoder` (n_threads, contexts, verbose, ...).

    Raises:
        ModelError: An unknown model, one not pulled yet, or a damaged file.
    """
    spec, path = resolve_model(name)
    if not exact_weights:
        path = runtime_path(path, spec)
    return LlamaEncoder(path, spec, **options)
