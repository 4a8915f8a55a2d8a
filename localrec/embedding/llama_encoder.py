"""Text to L2-normalised float32 vectors: the `Encoder` interface and its llama.cpp implementation.

`LlamaEncoder` talks to llama.cpp's batch API directly (token ids in, one pooled vector per
sequence out) rather than through `Llama.embed`, because that is what makes exact
reference truncation and dense packing of many short texts possible.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from localrec.errors import EncoderError, InputError, ModelFileError
from localrec.llama_runtime import ensure_backend, physical_cores, set_llama_verbose
from localrec.models.gguf import check_embedding_model, read_gguf_info
from localrec.models.registry import ModelSpec

__all__ = [
    "EncodeStats",
    "Encoder",
    "LlamaEncoder",
    "normalise_rows",
    "off_unit_rows",
    "require_encoder",
]

# How far a vector's length may be from 1 and still be a unit vector (float32 rounding).
UNIT_TOLERANCE = 1e-3

_POOLING_CODES = {"mean": 1, "cls": 2, "last": 3}
SMALL_BATCH_TOKENS = 64
# llama.cpp multiplies a batch of fewer tokens than this with other (quantised) kernels
# than a full one: a short text alone then differs from the same text in a batch
# (cosine 0.9996 with Q8_0). A filler sequence, whose vector is dropped, pads such a
# batch to this size, so that a text gets the same vector alone and in a batch.
MIN_BATCH_TOKENS = 64
# Float weights use the same arithmetic at any batch size: no filler needed, and one
# short query takes 6.1 ms instead of 40.1 ms (benchmarks/bench_encode.py, "1 query").
FLOAT_FILE_TYPES = ("ALL_F32", "MOSTLY_F16", "MOSTLY_BF16")
FILLER_TEXT = " ".join(["filler"] * MIN_BATCH_TOKENS)
# Side-by-side contexts were measured on all-MiniLM-L6-v2 (384 dimensions), where each
# operation is short; wider models keep one context unless asked, since every context
# holds its own compute buffer (36 MB here, far more for a 2,048-token 768-wide model).
SIDE_BY_SIDE_MAX_DIM = 384
MAX_DEFAULT_CONTEXTS = 4


@dataclass
class _Context:
    """One llama.cpp context with its own batch buffer and current thread count."""

    handle: Any
    memory: Any
    batch: Any
    threads: int


@runtime_checkable
class Encoder(Protocol):
    """Anything that turns texts into an (n, dim) float32 array of unit vectors: every
    attribute and method localrec calls on an encoder (a `typing.Protocol`, checked at run
    time when one is passed to `Recommender(encoder=...)`).

    Attributes:
        name: The model's name.
        dim: The vectors' dimension.
        spec: The model's `ModelSpec` (name, dim and prefixes), so vectors can be matched.
        max_tokens: Texts longer than this, in tokens, are cut.
        last_truncated: How many texts the last `encode` cut.
    """

    name: str
    dim: int
    spec: ModelSpec
    max_tokens: int
    last_truncated: int

    def encode(self, texts: Sequence[str], *, query: bool = False) -> np.ndarray: ...

    def count_tokens(self, text: str) -> int: ...

    def close(self) -> None: ...


def require_encoder(value: object) -> Encoder:
    """`value`, which a Python caller must give as an Encoder (InputError otherwise)."""
    if not (isinstance(value, Encoder) and isinstance(value.spec, ModelSpec)):
        raise InputError(
            "the encoder must have what localrec.Encoder names: a `spec` (a localrec "
            "ModelSpec: the model's name, dim and prefixes, so that the vectors it makes "
            "can be stored and matched), max_tokens, last_truncated, encode, count_tokens "
            f"and close; got {value!r:.60}"
        )
    return value


@dataclass
class EncodeStats:
    """Running counts, so callers can report what the encoder did."""

    texts: int = 0
    tokens: int = 0
    truncated: int = 0
    batches: int = 0


def normalise_rows(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    np.maximum(norms, 1e-12, out=norms)
    normalised: np.ndarray = (matrix / norms).astype(np.float32, copy=False)
    return normalised


def off_unit_rows(matrix: np.ndarray) -> np.ndarray:
    """Which rows are not finite and of unit length: no vector the encoder gives, a
    database stores or a cosine is computed from may be one."""
    norms = np.linalg.norm(np.asarray(matrix, dtype=np.float64), axis=1)
    off: np.ndarray = ~np.isfinite(norms) | (np.abs(norms - 1.0) > UNIT_TOLERANCE)
    return off


class LlamaEncoder:
    """A GGUF embedding model run by llama.cpp on the CPU.

    `batch_tokens` is the number of tokens per llama.cpp batch (n_ctx = n_batch = n_ubatch;
    any other combination aborts the process in C). Attention cost grows with its square,
    so it is kept just large enough for one maximal text.

    Many batches run side by side on `contexts` llama.cpp contexts, sharing the loaded
    weights and the threads: a small model's per-operation work is too short to split
    over cores without the threads waiting on each other (two contexts of one thread gave
    24-26% more texts/s than one of two, benchmarks/bench_encode.py). By default a model of
    at most 384 dimensions gets one context per thread (at most 4), a wider one a single
    context. A single batch, such as one query, runs on the first context with all the
    threads. `open_encoder` is the usual way to get one.

    Args:
        path: The GGUF file.
        spec: The model's registry entry (its pooling, prefixes and token limit).
        n_threads: Threads in all (default: the physical cores).
        batch_tokens: Tokens per llama.cpp batch (default: the model's max tokens).
        max_sequences: Texts packed into one batch at most.
        flash_attention: Use llama.cpp's flash attention.
        contexts: llama.cpp contexts run side by side (default: see above).
        verbose: Show llama.cpp's own log on stderr.
    """

    def __init__(
        self,
        path: Path | str,
        spec: ModelSpec,
        *,
        n_threads: int | None = None,
        batch_tokens: int | None = None,
        max_sequences: int = 32,
        flash_attention: bool = True,
        contexts: int | None = None,
        verbose: bool = False,
    ) -> None:
        ensure_backend()
        set_llama_verbose(verbose)
        import llama_cpp

        self._llama = llama_cpp
        self.path = Path(path)
        self.spec = spec
        self.name = spec.name
        self.last_truncated = 0  # how many texts the last `encode` cut
        info = read_gguf_info(self.path)
        check_embedding_model(info)
        self.info = info
        self.stats = EncodeStats()
        # One lock for everything that touches llama.cpp state: the context, the batch and
        # the token buffer (shared, so a tokenisation in one thread cannot overwrite
        # another's), and close(). Re-entrant: encode() tokenises while holding it.
        self._lock = threading.RLock()
        self._model: Any = None
        self._contexts: list[_Context] = []

        model_params = llama_cpp.llama_model_default_params()
        model_params.n_gpu_layers = 0
        model = llama_cpp.llama_model_load_from_file(str(self.path).encode(), model_params)
        if not model:
            raise ModelFileError(f"{self.path}: llama.cpp could not load this GGUF")
        self._model = model
        self.dim = int(llama_cpp.llama_model_n_embd(model))
        if self.dim != spec.dim:
            self.close()
            raise ModelFileError(
                f"{self.path}: the model has {self.dim} dimensions, the registry says {spec.dim}"
            )
        self._vocab = llama_cpp.llama_model_get_vocab(model)
        n_ctx_train = int(llama_cpp.llama_model_n_ctx_train(model))
        self.max_tokens = min(spec.max_tokens, n_ctx_train)
        # Never above the trained context: llama.cpp aborts the process there.
        self.batch_tokens = min(max(batch_tokens or self.max_tokens, self.max_tokens), n_ctx_train)
        # A power of two that divides the batch, at most one sequence per 8 tokens: other
        # values abort in llama.cpp's pooling graph (seen with 40 sequences in 256 tokens).
        limit = min(
            max_sequences, self.batch_tokens // 8, int(llama_cpp.llama_max_parallel_sequences())
        )
        self.max_sequences = 1 << max(0, limit.bit_length() - 1)
        self.n_threads = n_threads or physical_cores()

        ctx_params = llama_cpp.llama_context_default_params()
        ctx_params.n_ctx = self.batch_tokens
        ctx_params.n_batch = self.batch_tokens
        ctx_params.n_ubatch = self.batch_tokens
        ctx_params.n_seq_max = self.max_sequences
        ctx_params.n_threads = self.n_threads
        ctx_params.n_threads_batch = self.n_threads
        ctx_params.embeddings = True
        ctx_params.pooling_type = _POOLING_CODES[spec.pooling]
        ctx_params.flash_attn_type = (
            llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED
            if flash_attention
            else llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED
        )
        if contexts is None:
            small = self.dim <= SIDE_BY_SIDE_MAX_DIM
            contexts = min(self.n_threads, MAX_DEFAULT_CONTEXTS) if small else 1
        n_contexts = max(1, min(contexts, self.n_threads))
        # Threads per context when all of them run: the cores shared out, at least one.
        self.parallel_threads = max(1, self.n_threads // n_contexts)
        for _ in range(n_contexts):
            ctx = llama_cpp.llama_init_from_model(model, ctx_params)
            if not ctx:
                self.close()
                raise ModelFileError(f"{self.path}: llama.cpp could not create a context")
            self._contexts.append(
                _Context(
                    ctx,
                    llama_cpp.llama_get_memory(ctx),
                    llama_cpp.llama_batch_init(self.batch_tokens, 0, 1),
                    self.n_threads,
                )
            )
        self._n_prefix = 1 if llama_cpp.llama_vocab_get_add_bos(self._vocab) else 0
        self._n_suffix = int(
            bool(llama_cpp.llama_vocab_get_add_sep(self._vocab))
            or bool(llama_cpp.llama_vocab_get_add_eos(self._vocab))
        )
        self._token_buf = (llama_cpp.llama_token * (self.max_tokens * 4 + 16))()
        # The special tokens around every text, e.g. [CLS] and [SEP].
        self._special = self._tokenize_raw(b"", add_special=True)
        self._filler = (
            []
            if info.file_type in FLOAT_FILE_TYPES
            else self._tokenize_raw(FILLER_TEXT.encode(), add_special=True)
        )

    # -- lifecycle -------------------------------------------------------------------------

    def close(self) -> None:
        """Free the model and its contexts; a later `encode` raises `EncoderError`."""
        llama_cpp = self._llama
        with self._lock:
            while self._contexts:
                context = self._contexts.pop()
                llama_cpp.llama_batch_free(context.batch)
                llama_cpp.llama_free(context.handle)
            if self._model is not None:
                llama_cpp.llama_model_free(self._model)
                self._model = None

    def _require_open(self) -> None:
        # After close() the vocabulary is freed: tokenising would read freed memory.
        if self._model is None or not self._contexts:
            raise EncoderError("this encoder is closed; open a new one with open_encoder()")

    def __enter__(self) -> LlamaEncoder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()

    # -- tokens ----------------------------------------------------------------------------

    def _tokenize_raw(self, data: bytes, add_special: bool) -> list[int]:
        llama_cpp = self._llama
        with self._lock:
            self._require_open()
            buf = self._token_buf
            n = llama_cpp.llama_tokenize(
                self._vocab, data, len(data), buf, len(buf), add_special, False
            )
            if n < 0:
                buf = (llama_cpp.llama_token * (-n))()
                n = llama_cpp.llama_tokenize(
                    self._vocab, data, len(data), buf, len(buf), add_special, False
                )
                if n < 0:
                    raise EncoderError("llama.cpp failed to tokenize a text")
            return list(buf[:n])

    def tokenize(self, text: str) -> tuple[list[int], bool]:
        """Token ids with the model's special tokens, cut like the reference; and whether cut.

        The reference (sentence-transformers) keeps [CLS] and [SEP] and drops the content
        between; llama.cpp's own truncation would drop [SEP]. A long text is tokenised in
        growing prefixes, so a 100 kB text costs about as much as the part that is kept.
        """
        budget = self.max_tokens - self._n_prefix - self._n_suffix
        data = text.encode("utf-8", errors="replace")
        limit = max(256, budget * 8)
        while True:
            piece = data[:limit]
            content = self._tokenize_raw(piece, add_special=False)
            # One extra token beyond the budget proves the cut word did not matter.
            if len(piece) == len(data) or len(content) > budget + 1:
                break
            limit *= 2
        truncated = len(content) > budget
        prefix, suffix = self._special[: self._n_prefix], self._special[self._n_prefix :]
        return prefix + content[:budget] + suffix, truncated

    def count_tokens(self, text: str) -> int:
        """Tokens of `text` with special tokens, before any truncation."""
        return len(self._tokenize_raw(text.encode("utf-8", errors="replace"), add_special=True))

    # -- encoding --------------------------------------------------------------------------

    def encode(self, texts: Sequence[str], *, query: bool = False) -> np.ndarray:
        """Embed `texts` (query or document prefix applied); rows are L2-normalised.

        Args:
            texts: The texts, in order; each is cut at `max_tokens` as sentence-transformers
                cuts it (`last_truncated` says how many were).
            query: Apply the model's query prefix instead of the document prefix.

        Returns:
            An (n, dim) float32 array, one unit row per text.
        """
        if isinstance(texts, str | bytes):
            raise EncoderError("encode() takes a list of texts, not one string")
        prefix = self.spec.query_prefix if query else self.spec.document_prefix
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise EncoderError(f"text #{i + 1} is {type(text).__name__}, not str")
            if not text.strip():
                raise EncoderError(f"text #{i + 1} is empty; there is nothing to embed")
        with self._lock:
            self._require_open()
            token_lists: list[list[int]] = []
            truncated = 0
            for text in texts:
                tokens, cut = self.tokenize(prefix + text)
                truncated += cut
                token_lists.append(tokens)
            out = np.empty((len(token_lists), self.dim), dtype=np.float32)
            batches = self._pack(token_lists)
            self._run_batches(batches, token_lists, out)
            self.stats.batches += len(batches)
            self.stats.texts += len(token_lists)
            self.stats.tokens += sum(map(len, token_lists))
            self.stats.truncated += truncated
            self.last_truncated = truncated
        vectors = normalise_rows(out)
        bad = np.flatnonzero(off_unit_rows(vectors))
        if len(bad):
            # A model damaged without a change of size computes NaN or nothing: never a
            # vector to store or score.
            raise EncoderError(
                f"model {self.name} ({self.path}) gave a vector that is not finite and of "
                f"unit length for text #{int(bad[0]) + 1} of {len(texts)}; the model file may "
                f"be damaged: run `localrec models pull {self.name}`"
            )
        return vectors

    def _pack(self, token_lists: list[list[int]]) -> list[list[int]]:
        """Group text indices into batches: longest first, filling tokens and sequences."""
        order = sorted(range(len(token_lists)), key=lambda i: -len(token_lists[i]))
        batches: list[list[int]] = []
        current: list[int] = []
        used = 0
        for i in order:
            n = len(token_lists[i])
            if current and (used + n > self.batch_tokens or len(current) >= self.max_sequences):
                batches.append(current)
                current, used = [], 0
            current.append(i)
            used += n
        if current:
            batches.append(current)
        return batches

    def _run_batches(
        self, batches: list[list[int]], token_lists: list[list[int]], out: np.ndarray
    ) -> None:
        """Each context takes the next batch until none is left, one Python thread each;
        one context alone (a single batch, or a single context) gets all the threads.

        llama.cpp's decode releases the GIL (ctypes), so the contexts compute in parallel;
        the batches are longest first, so the last ones, which end unevenly, are short.
        """
        n = min(len(self._contexts), len(batches))
        threads = self.n_threads if n == 1 else self.parallel_threads
        queue = iter(batches)
        take = threading.Lock()
        errors: list[BaseException] = []

        def work(context: _Context) -> None:
            try:
                while not errors:
                    with take:
                        batch = next(queue, None)
                    if batch is None:
                        return
                    self._run_batch(context, threads, batch, token_lists, out)
            except BaseException as exc:  # re-raised in the calling thread below
                errors.append(exc)

        helpers = [threading.Thread(target=work, args=(c,)) for c in self._contexts[1:n]]
        for helper in helpers:
            helper.start()
        work(self._contexts[0])
        for helper in helpers:
            helper.join()
        if errors:
            raise errors[0]

    def _run_batch(
        self,
        context: _Context,
        threads: int,
        batch: list[int],
        token_lists: list[list[int]],
        out: np.ndarray,
    ) -> None:
        llama_cpp = self._llama
        b = context.batch
        sequences = [token_lists[i] for i in batch]
        n_text_tokens = sum(map(len, sequences))
        pad = min(MIN_BATCH_TOKENS, self.batch_tokens) - n_text_tokens
        if pad > 0 and self._filler and len(batch) < self.max_sequences:
            sequences.append(self._filler[:pad])  # the last sequence: its vector is not read
        k = 0
        for seq, tokens in enumerate(sequences):
            for pos, token in enumerate(tokens):
                b.token[k] = token
                b.pos[k] = pos
                b.n_seq_id[k] = 1
                b.seq_id[k][0] = seq
                # Every token is an output in embedding mode; otherwise llama.cpp warns per call.
                b.logits[k] = 1
                k += 1
        b.n_tokens = k
        # A short batch (one query) is faster on one thread than split over cores that
        # another process may hold: 12-19 ms against spikes of 800 ms, measured under load.
        if n_text_tokens < SMALL_BATCH_TOKENS:
            threads = 1
        if threads != context.threads:
            llama_cpp.llama_set_n_threads(context.handle, threads, threads)
            context.threads = threads
        if context.memory:
            llama_cpp.llama_memory_clear(context.memory, True)
            rc = llama_cpp.llama_decode(context.handle, b)
        else:
            rc = llama_cpp.llama_encode(context.handle, b)
        if rc != 0:
            raise EncoderError(f"llama.cpp failed on a batch of {len(batch)} texts (code {rc})")
        for seq, i in enumerate(batch):
            ptr = llama_cpp.llama_get_embeddings_seq(context.handle, seq)
            if not ptr:
                raise EncoderError("llama.cpp returned no pooled embedding")
            out[i] = np.ctypeslib.as_array(ptr, shape=(self.dim,))
