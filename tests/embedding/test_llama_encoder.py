"""The llama.cpp encoder against sentence-transformers' own vectors for all-MiniLM-L6-v2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import localrec.embedding.llama_encoder as encoder_module
from localrec.embedding.llama_encoder import LlamaEncoder
from localrec.errors import EncoderError
from localrec.llama_runtime import physical_cores
from localrec.models.registry import load_registry
from tests.conftest import FIXTURES, REPO

SENTENCES: list[str] = json.loads((FIXTURES / "reference_sentences.json").read_text("utf-8"))
REFERENCE = np.load(FIXTURES / "minilm_reference.npy")
SPEC = load_registry(include_user=False).get("all-minilm-l6-v2")


@pytest.fixture(scope="module")
def f16_encoder(built_models: dict[str, Path]) -> Any:
    with LlamaEncoder(built_models["f16"], SPEC) as enc:
        yield enc


@pytest.fixture(scope="module")
def q8_encoder(built_models: dict[str, Path]) -> Any:
    with LlamaEncoder(built_models["q8_0"], SPEC) as enc:
        yield enc


def test_fixture_covers_what_the_issue_asks() -> None:
    assert len(SENTENCES) >= 30 and REFERENCE.shape == (len(SENTENCES), 384)
    assert any("\u4e00" <= ch <= "\u9fff" for s in SENTENCES for ch in s)  # Chinese
    assert any(len(s.split()) > 300 for s in SENTENCES)  # long enough to be truncated


@pytest.mark.parametrize(("quant", "floor"), [("f16", 0.9999), ("q8_0", 0.998)])
def test_every_sentence_matches_sentence_transformers(
    quant: str, floor: float, f16_encoder: LlamaEncoder, q8_encoder: LlamaEncoder
) -> None:
    encoder = f16_encoder if quant == "f16" else q8_encoder
    vectors = encoder.encode(SENTENCES)
    cosines = (vectors * REFERENCE).sum(axis=1)
    worst = int(np.argmin(cosines))
    assert cosines.min() >= floor, (
        f"sentence #{worst} ({SENTENCES[worst][:60]!r}): {cosines[worst]}"
    )


def test_truncation_matches_the_reference_and_is_reported(f16_encoder: LlamaEncoder) -> None:
    f16_encoder.encode(SENTENCES)
    # The fixture's script counted 7 sentences over 256 tokens with the reference tokenizer.
    assert f16_encoder.last_truncated == 7
    tokens, cut = f16_encoder.tokenize(SENTENCES[45])
    assert cut and len(tokens) == 256
    assert tokens[0] == 101 and tokens[-1] == 102  # [CLS] ... [SEP] survive the cut


def test_text_alone_equals_text_in_a_batch(f16_encoder: LlamaEncoder) -> None:
    batch = f16_encoder.encode(SENTENCES)
    alone = np.vstack([f16_encoder.encode([s]) for s in SENTENCES])
    assert (batch * alone).sum(axis=1).min() >= 0.9999


def test_q8_alone_equals_q8_in_a_batch(
    q8_encoder: LlamaEncoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    batch = q8_encoder.encode(SENTENCES)
    alone = np.vstack([q8_encoder.encode([s]) for s in SENTENCES])
    assert (batch * alone).sum(axis=1).min() >= 0.9999
    # Without the filler that pads a short batch to 64 tokens, llama.cpp's Q8_0 kernels
    # for a few tokens differ from a full batch's: the reason the filler is there.
    monkeypatch.setattr(encoder_module, "MIN_BATCH_TOKENS", 0)
    unpadded = np.vstack([q8_encoder.encode([s]) for s in SENTENCES])
    assert (batch * unpadded).sum(axis=1).min() < 0.9999


def test_output_is_unit_float32_in_input_order(encoder: LlamaEncoder) -> None:
    texts = ["a kitchen knife", "green tea", "a kitchen knife"]
    vectors = encoder.encode(texts)
    assert vectors.dtype == np.float32 and vectors.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(vectors[0], vectors[2], atol=1e-6)
    assert float(vectors[0] @ vectors[1]) < 0.9


@pytest.mark.parametrize(
    "text",
    [
        "🍕🔥🎉",
        "速溶咖啡 instant coffee 和 green tea",
        "tab\tnew\nline\x00nul\x07bell",
        "x" * 100_000,
        " ".join(["word"] * 30_000),
        "[CLS] [SEP] [MASK] <s></s>",
        "a",
    ],
)
def test_awkward_texts_never_crash(encoder: LlamaEncoder, text: str) -> None:
    vector = encoder.encode([text])
    assert vector.shape == (1, 384) and np.isfinite(vector).all()


@pytest.mark.parametrize("text", ["", "   ", "\n\t "])
def test_empty_texts_are_refused_not_silently_embedded(encoder: LlamaEncoder, text: str) -> None:
    with pytest.raises(EncoderError, match="text #2 is empty"):
        encoder.encode(["fine", text])


def test_a_single_string_is_not_taken_for_a_list(encoder: LlamaEncoder) -> None:
    with pytest.raises(EncoderError, match="a list of texts, not one string"):
        encoder.encode("hello")  # type: ignore[arg-type]


def test_a_closed_encoder_refuses_instead_of_reading_freed_memory(
    built_models: dict[str, Path],
) -> None:
    """In a child process: before, tokenising after close() read the freed vocabulary and
    llama.cpp aborted the interpreter (exit 134)."""
    import subprocess
    import sys

    code = f"""
import sys
from localrec.embedding.llama_encoder import LlamaEncoder
from localrec.errors import EncoderError
from localrec.models.registry import load_registry
enc = LlamaEncoder({str(built_models["q8_0"])!r}, load_registry(include_user=False).get())
enc.encode(["green tea"])
enc.close()
enc.close()
for call in (lambda: enc.encode(["green tea"]), lambda: enc.count_tokens("tea")):
    try:
        call()
    except EncoderError as exc:
        print("refused:", exc)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-500:]
    assert done.stdout.count("refused: this encoder is closed") == 2


def test_threads_sharing_an_encoder_get_their_own_vectors(encoder: LlamaEncoder) -> None:
    """The token buffer is shared: tokenising outside the lock let one thread's tokens
    overwrite another's (5 of 600 texts came back wrong, cosine down to 0.36)."""
    from concurrent.futures import ThreadPoolExecutor

    texts = [f"product {i}: stainless steel kettle {i % 7} green tea cast iron" for i in range(240)]
    chunks = [texts[i : i + 5] for i in range(0, len(texts), 5)]
    serial = np.vstack([encoder.encode(chunk) for chunk in chunks])
    with ThreadPoolExecutor(max_workers=6) as pool:
        threaded = np.vstack(list(pool.map(encoder.encode, chunks)))
    np.testing.assert_allclose((serial * threaded).sum(axis=1), 1.0, atol=1e-5)


MANY_TEXTS = [
    f"product {i}: "
    + " ".join(["stainless steel kettle", "green tea", "cast iron pan"][: 1 + i % 3]) * (1 + i % 5)
    for i in range(300)
]


def test_contexts_side_by_side_give_the_vectors_of_one(built_models: dict[str, Path]) -> None:
    with (
        LlamaEncoder(built_models["f16"], SPEC, n_threads=2, contexts=1) as one,
        LlamaEncoder(built_models["f16"], SPEC, n_threads=2, contexts=2) as two,
    ):
        assert (len(one._contexts), len(two._contexts), two.parallel_threads) == (1, 2, 1)
        alone, side_by_side = one.encode(MANY_TEXTS), two.encode(MANY_TEXTS)
        assert two.stats.batches == one.stats.batches > 10
    # The same batches, so the same arithmetic whichever context ran them.
    np.testing.assert_allclose(side_by_side, alone, atol=1e-6)


@pytest.mark.parametrize(
    ("n_threads", "contexts", "max_dim", "expected"),
    [
        (2, None, 384, (2, 1)),  # a small model: one single-threaded context per thread
        (8, None, 384, (4, 2)),  # at most 4 by default, the threads shared out
        (2, None, 100, (1, 2)),  # a wider model: one context of all threads
        (2, 5, 384, (2, 1)),  # never more contexts than threads
        (3, 2, 384, (2, 1)),
    ],
)
def test_how_many_contexts_and_threads_each(
    built_models: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
    n_threads: int,
    contexts: int | None,
    max_dim: int,
    expected: tuple[int, int],
) -> None:
    monkeypatch.setattr(encoder_module, "SIDE_BY_SIDE_MAX_DIM", max_dim)
    with LlamaEncoder(built_models["f16"], SPEC, n_threads=n_threads, contexts=contexts) as enc:
        assert (len(enc._contexts), enc.parallel_threads) == expected


def test_a_batch_failing_in_another_context_raises_and_the_encoder_goes_on(
    built_models: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    import llama_cpp

    with LlamaEncoder(built_models["f16"], SPEC, n_threads=2, contexts=2) as enc:
        expected = enc.encode(MANY_TEXTS)
        for name in ("llama_encode", "llama_decode"):
            real = getattr(llama_cpp, name)

            def fail_off_main(ctx: Any, batch: Any, real: Any = real) -> int:
                return (
                    -1
                    if threading.current_thread() is not threading.main_thread()
                    else real(ctx, batch)
                )

            monkeypatch.setattr(llama_cpp, name, fail_off_main)
        with pytest.raises(EncoderError, match=r"llama\.cpp failed on a batch"):
            enc.encode(MANY_TEXTS)
        monkeypatch.undo()
        np.testing.assert_allclose(enc.encode(MANY_TEXTS), expected, atol=1e-6)


def test_long_text_costs_about_the_kept_part(encoder: LlamaEncoder) -> None:
    import time

    start = time.perf_counter()
    encoder.encode([" ".join(["tokens"] * 200_000)])
    assert time.perf_counter() - start < 2.0


# -- pitfalls of llama-cpp-python 0.3.36, each handled ------------------------------------


def test_batch_and_ubatch_are_equal_and_context_within_training(encoder: LlamaEncoder) -> None:
    import llama_cpp

    ctx = encoder._contexts[0].handle
    assert llama_cpp.llama_n_batch(ctx) == llama_cpp.llama_n_ubatch(ctx) == encoder.batch_tokens
    # llama.cpp sizes n_ctx as n_seq_max x n_ctx_seq; the per-sequence window is what counts.
    assert llama_cpp.llama_n_ctx_seq(ctx) <= llama_cpp.llama_model_n_ctx_train(encoder._model)


def test_oversized_batch_request_is_clamped_not_aborted(built_models: dict[str, Path]) -> None:
    with LlamaEncoder(built_models["q8_0"], SPEC, batch_tokens=100_000, max_sequences=999) as enc:
        assert enc.batch_tokens == 512  # the trained context
        assert enc.max_sequences in (1, 2, 4, 8, 16, 32, 64)
        assert enc.encode(["still works"]).shape == (1, 384)


def test_threads_are_the_physical_cores(encoder: LlamaEncoder) -> None:
    import llama_cpp

    assert encoder.n_threads == physical_cores()
    assert llama_cpp.llama_n_threads_batch(encoder._contexts[0].handle) == physical_cores()
    # Long inputs run one single-threaded context per core side by side.
    assert (len(encoder._contexts), encoder.parallel_threads) == (physical_cores(), 1)


def test_plain_llama_cpp_python_would_not_normalise(built_models: dict[str, Path]) -> None:
    from llama_cpp import Llama

    llm = Llama(str(built_models["q8_0"]), embedding=True, verbose=False)
    raw = np.asarray(llm.embed(["green tea"]))
    assert abs(np.linalg.norm(raw) - 1.0) > 0.01  # the pitfall exists upstream ...
    ours = LlamaEncoder(built_models["q8_0"], SPEC).encode(["green tea"])
    assert abs(np.linalg.norm(ours) - 1.0) < 1e-5  # ... and localrec normalises


def test_plain_llama_cpp_python_reads_per_token_vectors_from_the_wrong_offset(
    built_models: dict[str, Path], encoder: LlamaEncoder
) -> None:
    """With pooling NONE, upstream's second text gets the first text's token rows.

    localrec never asks llama.cpp for per-token vectors: it always pools in llama.cpp,
    one sequence id per text, so the bug cannot reach it.
    """
    import llama_cpp
    from llama_cpp import Llama

    llm = Llama(
        str(built_models["q8_0"]),
        embedding=True,
        verbose=False,
        pooling_type=llama_cpp.LLAMA_POOLING_TYPE_NONE,
    )
    both = llm.embed(["green tea", "cast iron skillet"])
    alone = llm.embed(["cast iron skillet"])
    assert not np.allclose(np.asarray(both[1][0]), np.asarray(alone[0]), atol=1e-3)
    assert encoder.spec.pooling in ("mean", "cls", "last")
    pair = encoder.encode(["green tea", "cast iron skillet"])
    single = encoder.encode(["cast iron skillet"])
    assert float(pair[1] @ single[0]) > 0.999


def test_plain_llama_cpp_python_embeds_an_empty_string(built_models: dict[str, Path]) -> None:
    from llama_cpp import Llama

    llm = Llama(str(built_models["q8_0"]), embedding=True, verbose=False)
    assert len(llm.embed([""])[0]) == 384  # upstream: a vector for nothing
    with pytest.raises(EncoderError):
        LlamaEncoder(built_models["q8_0"], SPEC).encode([""])


@pytest.mark.parametrize("verbose", [False, True])
def test_llama_cpp_stays_quiet_unless_asked(built_models: dict[str, Path], verbose: bool) -> None:
    code = (
        "import sys; sys.path.insert(0, sys.argv[1])\n"
        "from localrec.embedding.llama_encoder import LlamaEncoder\n"
        "from localrec.models.registry import load_registry\n"
        "e = LlamaEncoder(sys.argv[2], load_registry(False).get('all-minilm-l6-v2'),"
        f" verbose={verbose})\n"
        "e.encode(['hello'])\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(REPO), str(built_models["q8_0"])],
        capture_output=True,
        text=True,
        check=True,
    )
    if verbose:
        assert "llama" in out.stderr or "bert" in out.stderr
    else:
        assert out.stderr == "" and out.stdout == ""
