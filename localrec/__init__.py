"""localrec: private, fully offline cross-domain recommendations on the CPU."""

from __future__ import annotations

__version__ = "0.1.0"

from .embedding import EmbedResult, embed_texts
from .encoder import Encoder, LlamaEncoder, open_encoder
from .errors import (
    DatabaseError,
    DatasetError,
    EncoderError,
    InputError,
    LocalrecError,
    ModelError,
    ModelFileError,
    ModelNotFound,
    ModelNotPulled,
    NetworkDisabled,
    NotEncoded,
    RegistryError,
    SchemaError,
    TrainingError,
    UnknownModel,
)
from .model_cache import add_model, list_models, pull_model, resolve_model
from .registry import ModelSpec, Registry, load_registry

__all__ = [
    "DatabaseError",
    "DatasetError",
    "EmbedResult",
    "Encoder",
    "EncoderError",
    "InputError",
    "LlamaEncoder",
    "LocalrecError",
    "ModelError",
    "ModelFileError",
    "ModelNotFound",
    "ModelNotPulled",
    "ModelSpec",
    "NetworkDisabled",
    "NotEncoded",
    "Registry",
    "RegistryError",
    "SchemaError",
    "TrainingError",
    "UnknownModel",
    "__version__",
    "add_model",
    "embed_texts",
    "list_models",
    "load_registry",
    "open_encoder",
    "pull_model",
    "resolve_model",
]
