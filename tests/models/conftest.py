"""Fixtures of the model tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fakes import write_tiny_gguf


@pytest.fixture(scope="module")
def tiny_embedding_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A well-formed GGUF that passes localrec's header checks (bert, mean pooling), with
    no weights or vocabulary."""
    return write_tiny_gguf(tmp_path_factory.mktemp("tiny") / "tiny-bert.gguf")
