"""Build a GGUF from a sentence-transformers BERT checkpoint, offline, without PyTorch.

Follows llama.cpp's `convert_hf_to_gguf.py` (BertModel): the same tensor names (from the
`gguf` package's own maps), the same phantom-space WordPiece vocabulary, the same float32
rules for 1-D tensors and position/type embeddings. Q8_0 is made by llama.cpp's own
quantizer from a float32 intermediate, so no precision is lost twice.
"""

from __future__ import annotations

import ctypes
import json
import logging
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from localrec.errors import InputError, ModelFileError
from localrec.models.gguf import GGUFInfo, check_embedding_model, read_gguf_info

__all__ = ["QUANT_TYPES", "convert_checkpoint", "read_safetensors"]

QUANT_TYPES = ("f16", "q8_0")
_SAFETENSORS_DTYPES: dict[str, np.dtype[Any]] = {
    "F32": np.dtype("<f4"),
    "F16": np.dtype("<f2"),
    "BF16": np.dtype("<u2"),
    "F64": np.dtype("<f8"),
    "I64": np.dtype("<i8"),
    "I32": np.dtype("<i4"),
}
_SKIPPED = ("embeddings.position_ids", "pooler.dense.weight", "pooler.dense.bias")
_POOLING_FLAGS = {
    "pooling_mode_mean_tokens": "MEAN",
    "pooling_mode_cls_token": "CLS",
    "pooling_mode_lasttoken": "LAST",
}


def read_safetensors(path: Path) -> Iterator[tuple[str, np.ndarray]]:
    """Yield (name, float32 array) for every tensor, memory-mapped, BF16 widened."""
    with open(path, "rb") as fh:
        header_len_bytes = fh.read(8)
        if len(header_len_bytes) != 8:
            raise ModelFileError(f"{path}: truncated safetensors file")
        header_len = int.from_bytes(header_len_bytes, "little")
        if header_len <= 0 or header_len > 100_000_000:
            raise ModelFileError(f"{path}: implausible safetensors header length {header_len}")
        try:
            header = json.loads(fh.read(header_len))
        except ValueError as exc:
            raise ModelFileError(f"{path}: corrupt safetensors header: {exc}") from None
    data = np.memmap(path, dtype=np.uint8, mode="r", offset=8 + header_len)
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        dtype = _SAFETENSORS_DTYPES.get(meta.get("dtype"))
        if dtype is None:
            raise ModelFileError(f"{path}: tensor {name} has unsupported dtype {meta.get('dtype')}")
        start, end = meta["data_offsets"]
        if end > data.shape[0]:
            raise ModelFileError(f"{path}: truncated: tensor {name} runs past the end of the file")
        raw = data[start:end].view(dtype).reshape(meta["shape"])
        if meta["dtype"] == "BF16":
            array = (raw.astype(np.uint32) << 16).view(np.float32)
        else:
            array = raw.astype(np.float32)
        yield name, array


def _load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path}: missing; a sentence-transformers checkpoint needs it") from None
    except ValueError as exc:
        raise InputError(f"{path}: not valid JSON: {exc}") from None


def _vocab(src: Path, vocab_size: int) -> tuple[list[str], list[int]]:
    """Token strings in llama.cpp's phantom-space form, and their gguf token types."""
    import gguf

    tokens: dict[int, str] = {}
    special: set[int] = set()
    tokenizer_json = src / "tokenizer.json"
    if tokenizer_json.exists():
        data = _load_json(tokenizer_json)
        model = data.get("model", {})
        if model.get("type") != "WordPiece":
            raise InputError(
                f"{tokenizer_json}: tokenizer type {model.get('type')!r} is not WordPiece; "
                "only BERT-family (WordPiece) checkpoints can be converted"
            )
        tokens = {int(i): t for t, i in model["vocab"].items()}
        for added in data.get("added_tokens", []):
            tokens[int(added["id"])] = added["content"]
            if added.get("special"):
                special.add(int(added["id"]))
    elif (src / "vocab.txt").exists():
        lines = (src / "vocab.txt").read_text(encoding="utf-8").splitlines()
        tokens = dict(enumerate(lines))
        special = {
            i for i, t in tokens.items() if t in ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
        }
    else:
        raise InputError(f"{src}: neither tokenizer.json nor vocab.txt found")

    out_tokens: list[str] = []
    out_types: list[int] = []
    for i in range(vocab_size):
        token = tokens.get(i)
        if token is None:
            out_tokens.append(f"[PAD{i}]")
            out_types.append(gguf.TokenType.UNUSED)
        elif i in special:
            out_tokens.append(token)
            out_types.append(gguf.TokenType.CONTROL)
        else:
            # llama.cpp's WPM tokenizer wants word-initial pieces marked with U+2581.
            out_tokens.append(token[2:] if token.startswith("##") else "\u2581" + token)
            out_types.append(gguf.TokenType.NORMAL)
    return out_tokens, out_types


def _pooling_type(src: Path) -> Any:
    import gguf

    modules_path = src / "modules.json"
    if not modules_path.exists():
        raise InputError(f"{src}: no modules.json; cannot tell the sentence pooling")
    for module in _load_json(modules_path):
        if str(module.get("type", "")).endswith("Pooling"):
            config = _load_json(src / module["path"] / "config.json")
            for flag, name in _POOLING_FLAGS.items():
                if config.get(flag):
                    return getattr(gguf.PoolingType, name)
            raise InputError(f"{src}: only mean, cls and last-token pooling are supported")
    raise InputError(f"{src}: modules.json has no Pooling module")


def _tensor_type(gguf_name: str, array: np.ndarray, want_f16: bool) -> Any:
    import gguf

    always_f32 = (
        array.ndim <= 1
        or gguf_name.endswith("_norm.weight")
        or not gguf_name.endswith(".weight")
        or gguf_name.startswith(("position_embd", "token_types"))
    )
    if want_f16 and not always_f32:
        return gguf.GGMLQuantizationType.F16
    return gguf.GGMLQuantizationType.F32


def _write_gguf(src: Path, out: Path, want_f16: bool, name: str) -> None:
    import gguf

    config = _load_json(src / "config.json")
    if config.get("model_type") != "bert":
        raise InputError(
            f"{src / 'config.json'}: model_type {config.get('model_type')!r} is not 'bert'; "
            "only BERT-family sentence-transformers checkpoints can be converted"
        )
    weights = src / "model.safetensors"
    if not weights.exists():
        raise InputError(f"{src}: no model.safetensors")
    n_layers = int(config["num_hidden_layers"])
    tensor_map = gguf.get_tensor_name_map(gguf.MODEL_ARCH.BERT, n_layers)

    writer = gguf.GGUFWriter(str(out), arch="bert")
    writer.add_type(gguf.GGUFType.MODEL)
    writer.add_name(name)
    writer.add_block_count(n_layers)
    writer.add_context_length(int(config["max_position_embeddings"]))
    writer.add_embedding_length(int(config["hidden_size"]))
    writer.add_feed_forward_length(int(config["intermediate_size"]))
    writer.add_head_count(int(config["num_attention_heads"]))
    writer.add_layer_norm_eps(float(config.get("layer_norm_eps", 1e-12)))
    writer.add_causal_attention(False)
    writer.add_pooling_type(_pooling_type(src))
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16 if want_f16 else gguf.LlamaFileType.ALL_F32)
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)

    vocab_size = int(config["vocab_size"])
    tokens, types = _vocab(src, vocab_size)
    writer.add_token_type_count(int(config.get("type_vocab_size", 1)))
    writer.add_tokenizer_model("bert")
    # The pre-tokenizer name only matters for BPE vocabularies; WordPiece has its own.
    writer.add_tokenizer_pre("default")
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    # gguf logs a warning per special token it has no GGUF key for ([CLS]); llama.cpp's
    # WordPiece vocabulary has its own defaults for those, so the warning is noise.
    logging.getLogger("gguf").setLevel(logging.ERROR)
    gguf.SpecialVocab(src, n_vocab=vocab_size).add_to_gguf(writer)

    for hf_name, array in read_safetensors(weights):
        short = hf_name.removeprefix("bert.")
        if short.endswith(".gamma"):
            short = short[: -len(".gamma")] + ".weight"
        if short.endswith(".beta"):
            short = short[: -len(".beta")] + ".bias"
        if short in _SKIPPED or short.startswith("cls."):
            continue
        gguf_name = tensor_map.get_name(short, try_suffixes=(".weight", ".bias"))
        if gguf_name is None:
            raise ModelFileError(f"{weights}: cannot map tensor {hf_name!r} to a GGUF name")
        qtype = _tensor_type(gguf_name, array, want_f16)
        data = array.astype(np.float16) if qtype == gguf.GGMLQuantizationType.F16 else array
        writer.add_tensor(gguf_name, np.ascontiguousarray(data), raw_dtype=qtype)

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def _quantize_q8_0(src: Path, out: Path) -> None:
    import llama_cpp

    from localrec.llama_runtime import ensure_backend, physical_cores

    ensure_backend()
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = llama_cpp.LLAMA_FTYPE_MOSTLY_Q8_0
    params.nthread = physical_cores()
    rc = llama_cpp.llama_model_quantize(os.fsencode(src), os.fsencode(out), ctypes.byref(params))
    if rc != 0:
        raise ModelFileError(f"llama.cpp could not quantize {src} to Q8_0 (code {rc})")


def convert_checkpoint(
    src: Path,
    out: Path,
    quant: str = "q8_0",
    name: str | None = None,
    on_step: Callable[[str], None] | None = None,
) -> GGUFInfo:
    """Convert the checkpoint directory `src` into the GGUF `out` (written atomically)."""
    if quant not in QUANT_TYPES:
        raise InputError(f"invalid type {quant!r}; choose one of {', '.join(QUANT_TYPES)}")
    src = Path(src)
    if not src.is_dir():
        raise InputError(f"{src}: not a directory")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    step = on_step or (lambda message: None)
    label = name or src.name
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".convert-") as tmp:
        tmp_dir = Path(tmp)
        if quant == "f16":
            step("writing F16 GGUF")
            staged = tmp_dir / "model-f16.gguf"
            _write_gguf(src, staged, want_f16=True, name=label)
        else:
            step("writing F32 GGUF")
            f32 = tmp_dir / "model-f32.gguf"
            _write_gguf(src, f32, want_f16=False, name=label)
            step("quantizing to Q8_0 with llama.cpp")
            staged = tmp_dir / "model-q8_0.gguf"
            _quantize_q8_0(f32, staged)
        info = read_gguf_info(staged)
        check_embedding_model(info)
        os.replace(staged, out)
    return read_gguf_info(out)
