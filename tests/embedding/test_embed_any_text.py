"""Any text, however odd or long, embeds to one finite unit vector with the real model; only
blank text is refused, with a clear error."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from localrec.errors import EncoderError
from tests.conftest import DEFAULT_MODEL
from tests.helpers import (
    FUZZ_RUNS,
    HUGE,
    fuzz,
    fuzz_report,
)


@pytest.fixture
def fast_encoder(pulled_home: Path) -> Iterator[Any]:
    """The default model with one llama.cpp thread (see conftest's `one_thread`); the session
    `encoder` fixture has two, which costs ~1 s per text on a busy 2-core machine."""
    from localrec.embedding.llama_encoder import LlamaEncoder
    from localrec.models.registry import load_registry

    spec = load_registry(include_user=False).get(DEFAULT_MODEL)
    with LlamaEncoder(pulled_home / "models" / f"{DEFAULT_MODEL}.gguf", spec, n_threads=1) as enc:
        yield enc


def test_fuzz_embed(fast_encoder: Any) -> None:
    """Any text embeds to one finite unit vector; only blank text is refused."""

    @fuzz(40)
    @given(
        text=st.one_of(
            st.text(st.characters(exclude_categories=["Cs"]), max_size=300),
            HUGE,
            st.sampled_from(["\x00", "\x00hi\x00", " \t\n", "\u200b", "🤖" * 600, "[SEP][CLS]"]),
        ),
        query=st.booleans(),
    )
    def prop(text: str, query: bool) -> None:
        FUZZ_RUNS["embed"] += 1
        try:
            vectors = fast_encoder.encode([text], query=query)
        except EncoderError as exc:
            assert not text.strip() and "is empty" in str(exc)
            return
        assert text.strip()
        assert vectors.shape == (1, 384) and vectors.dtype == np.float32
        assert np.isfinite(vectors).all()
        assert abs(float(np.linalg.norm(vectors[0])) - 1.0) < 1e-4

    prop()
    fuzz_report("embed", 40)
