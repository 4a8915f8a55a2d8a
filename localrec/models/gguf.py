"""Read and sanity-check a GGUF file's header before llama.cpp ever sees it."""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, ClassVar

from localrec.errors import ModelFileError

__all__ = ["GGUFInfo", "read_gguf_info", "sha256_file"]

# Architectures llama.cpp runs as encoders (no causal mask, pooled output).
ENCODER_ARCHES = frozenset(
    {
        "bert",
        "nomic-bert",
        "nomic-bert-moe",
        "jina-bert-v2",
        "jina-bert-v3",
        "modern-bert",
        "neo-bert",
        "gemma-embedding",
        "t5encoder",
    }
)
# llama.cpp's enum llama_pooling_type.
POOLING_NAMES = {0: "none", 1: "mean", 2: "cls", 3: "last", 4: "rank"}
GGUF_MAGIC = b"GGUF"
# Tensor dimensions beyond this are not a small embedding model, whatever the header says.
MAX_ELEMENTS = 1 << 34
# ggml tensor types as (elements per block, bytes per block), and llama.cpp file types.
# Copied from the gguf package (tests check they agree) because importing it costs ~0.4 s
# on every model load.
GGML_TYPE_SIZES: dict[int, tuple[int, int]] = {
    0: (1, 4),
    1: (1, 2),
    2: (32, 18),
    3: (32, 20),
    6: (32, 22),
    7: (32, 24),
    8: (32, 34),
    9: (32, 40),
    10: (256, 84),
    11: (256, 110),
    12: (256, 144),
    13: (256, 176),
    14: (256, 210),
    15: (256, 292),
    16: (256, 66),
    17: (256, 74),
    18: (256, 98),
    19: (256, 50),
    20: (32, 18),
    21: (256, 110),
    22: (256, 82),
    23: (256, 136),
    24: (1, 1),
    25: (1, 2),
    26: (1, 4),
    27: (1, 8),
    28: (1, 8),
    29: (256, 56),
    30: (1, 2),
    34: (256, 54),
    35: (256, 66),
    39: (32, 17),
    40: (64, 36),
    41: (128, 18),
}
FILE_TYPES = {
    0: "ALL_F32",
    1: "MOSTLY_F16",
    2: "MOSTLY_Q4_0",
    3: "MOSTLY_Q4_1",
    7: "MOSTLY_Q8_0",
    8: "MOSTLY_Q5_0",
    9: "MOSTLY_Q5_1",
    15: "MOSTLY_Q4_K_M",
    17: "MOSTLY_Q5_K_M",
    18: "MOSTLY_Q6_K",
    32: "MOSTLY_BF16",
}


@dataclass(frozen=True)
class GGUFInfo:
    """What a GGUF header says about the model inside."""

    path: Path
    architecture: str
    name: str
    embedding_length: int
    context_length: int
    block_count: int
    pooling: str | None
    causal: bool | None
    tokenizer: str
    file_type: str
    n_tensors: int
    file_size: int

    @property
    def is_embedding_model(self) -> bool:
        if self.pooling in ("mean", "cls", "last"):
            return True
        return self.architecture in ENCODER_ARCHES and self.pooling != "none"

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "architecture": self.architecture,
            "name": self.name,
            "embedding_length": self.embedding_length,
            "context_length": self.context_length,
            "block_count": self.block_count,
            "pooling": self.pooling,
            "causal_attention": self.causal,
            "tokenizer": self.tokenizer,
            "file_type": self.file_type,
            "tensors": self.n_tensors,
            "file_size": self.file_size,
        }


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


class _HeaderReader:
    """A bounds-checked reader of GGUF header values; hostile lengths raise, never allocate."""

    _SCALARS: ClassVar[dict[int, str]] = {
        0: "<B",
        1: "<b",
        2: "<H",
        3: "<h",
        4: "<I",
        5: "<i",
        6: "<f",
        7: "<?",
        10: "<Q",
        11: "<q",
        12: "<d",
    }

    def __init__(self, fh: BinaryIO, size: int, path: Path) -> None:
        self.fh = fh
        self.size = size
        self.path = path

    def read(self, n: int) -> bytes:
        data = self.fh.read(n)
        if len(data) != n:
            raise ModelFileError(f"{self.path}: truncated GGUF header")
        return data

    def scalar(self, fmt: str) -> Any:
        return struct.unpack(fmt, self.read(struct.calcsize(fmt)))[0]

    def count(self, what: str) -> int:
        n = int(self.scalar("<Q"))
        if n > self.size:
            raise ModelFileError(f"{self.path}: header claims {n} {what}, more than the file holds")
        return n

    def string(self) -> str:
        return self.read(self.count("string bytes")).decode("utf-8", errors="replace")

    def value(self, value_type: int, keep: bool = True, depth: int = 0) -> Any:
        if depth > 4:
            raise ModelFileError(f"{self.path}: GGUF arrays nested more than 4 deep")
        if value_type in self._SCALARS:
            return self.scalar(self._SCALARS[value_type])
        if value_type == 8:
            return self.string()
        if value_type == 9:
            item_type = int(self.scalar("<I"))
            n = self.count("array items")
            if item_type in self._SCALARS:
                width = struct.calcsize(self._SCALARS[item_type])
                if n * width > self.size:
                    raise ModelFileError(f"{self.path}: an array claims {n * width} bytes")
                raw = self.read(n * width)
                if not keep:
                    return n
                return list(struct.unpack(f"<{n}{self._SCALARS[item_type][1]}", raw))
            items = [self.value(item_type, keep, depth + 1) for _ in range(n)]
            return items if keep else n
        raise ModelFileError(f"{self.path}: unknown GGUF value type {value_type}")


def _parse_header(path: Path, size: int) -> tuple[dict[str, Any], list[tuple[str, int, int, int]]]:
    """Metadata (arrays reduced to their length) and tensors as (name, type, elements, offset)."""
    with open(path, "rb") as fh:
        reader = _HeaderReader(fh, size, path)
        reader.read(4)
        version = reader.scalar("<I")
        if version not in (2, 3):
            raise ModelFileError(f"{path}: unsupported GGUF version {version}")
        n_tensors = reader.count("tensors")
        n_kv = reader.count("metadata keys")
        meta: dict[str, Any] = {}
        for _ in range(n_kv):
            key = reader.string()
            value_type = int(reader.scalar("<I"))
            meta[key] = reader.value(value_type, keep=value_type != 9)
        tensors = []
        for _ in range(n_tensors):
            name = reader.string()
            n_dims = int(reader.scalar("<I"))
            if n_dims > 8:
                raise ModelFileError(f"{path}: tensor {name!r} claims {n_dims} dimensions")
            elements = 1
            for _ in range(n_dims):
                elements *= int(reader.scalar("<Q"))
            ggml_type = int(reader.scalar("<I"))
            offset = int(reader.scalar("<Q"))
            tensors.append((name, ggml_type, elements, offset))
        header_end = fh.tell()
    alignment = meta.get("general.alignment", 32) or 32
    if type(alignment) is not int or not 0 < alignment <= 1 << 16:
        raise ModelFileError(f"{path}: general.alignment {alignment!r} is not a valid alignment")
    data_start = header_end + (-header_end % alignment)
    return meta | {"__data_start__": data_start}, tensors


def read_gguf_info(path: Path) -> GGUFInfo:
    """Parse the header; a missing, truncated or corrupt file raises `ModelFileError`.

    A small parser of our own: gguf.GGUFReader decodes every vocabulary entry and takes
    ~2 s on a 30k-token model, which every model load would pay.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: no such GGUF file")
    size = path.stat().st_size
    with open(path, "rb") as fh:
        magic = fh.read(4)
    if magic != GGUF_MAGIC:
        raise ModelFileError(f"{path}: not a GGUF file (it does not start with 'GGUF')")
    meta, tensors = _parse_header(path, size)
    data_start = int(meta["__data_start__"])
    for name, ggml_type, elements, offset in tensors:
        if elements > MAX_ELEMENTS:
            raise ModelFileError(f"{path}: tensor {name!r} claims {elements} elements; refused")
        if ggml_type not in GGML_TYPE_SIZES:
            raise ModelFileError(f"{path}: tensor {name!r} has unknown type {ggml_type}")
        block, type_size = GGML_TYPE_SIZES[ggml_type]
        end = data_start + offset + elements // block * type_size
        if end > size:
            raise ModelFileError(
                f"{path}: truncated: tensor {name!r} ends at byte {end} "
                f"but the file has {size} bytes"
            )
    arch = meta.get("general.architecture")
    if not isinstance(arch, str):
        raise ModelFileError(f"{path}: no general.architecture in the GGUF header")

    def arch_int(key: str) -> int:
        value = meta.get(f"{arch}.{key}")
        return int(value) if isinstance(value, int) and not isinstance(value, bool) else 0

    pooling_raw = meta.get(f"{arch}.pooling_type")
    causal = meta.get(f"{arch}.attention.causal")
    file_type = meta.get("general.file_type")
    file_type_name = (
        FILE_TYPES.get(file_type, str(file_type)) if isinstance(file_type, int) else "?"
    )
    return GGUFInfo(
        path=path,
        architecture=arch,
        name=str(meta.get("general.name") or ""),
        embedding_length=arch_int("embedding_length"),
        context_length=arch_int("context_length"),
        block_count=arch_int("block_count"),
        pooling=POOLING_NAMES.get(int(pooling_raw), str(pooling_raw))
        if isinstance(pooling_raw, int)
        else None,
        causal=bool(causal) if causal is not None else None,
        tokenizer=str(meta.get("tokenizer.ggml.model") or ""),
        file_type=file_type_name,
        n_tensors=len(tensors),
        file_size=size,
    )


def check_embedding_model(info: GGUFInfo) -> None:
    """Refuse generative LLMs and other GGUFs that do not produce pooled embeddings."""
    if not info.is_embedding_model:
        raise ModelFileError(
            f"{info.path}: architecture {info.architecture!r} with pooling "
            f"{info.pooling or 'unset'} is not an embedding model; localrec needs a model "
            "with mean, cls or last pooling (for example a BERT-family sentence encoder)"
        )
    if info.embedding_length <= 0 or info.context_length <= 0:
        raise ModelFileError(f"{info.path}: the header lacks embedding or context length")
