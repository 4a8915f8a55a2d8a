"""localrec: private, fully offline cross-domain recommendations on the CPU."""

from __future__ import annotations

__version__ = "0.1.0"

from .db import Store
from .embedding import EmbedResult, embed_texts
from .encode import EncodeReport, encode_items
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
from .ingest import EventColumns, IngestReport, ItemColumns, add_events, add_items
from .model_cache import add_model, list_models, pull_model, resolve_model
from .recommend import Explanation, Recommendation, RecommendationList, Recommender
from .registry import ModelSpec, Registry, load_registry

__all__ = [
    "DatabaseError",
    "DatasetError",
    "EmbedResult",
    "EncodeReport",
    "Encoder",
    "EncoderError",
    "EventColumns",
    "Explanation",
    "IngestReport",
    "InputError",
    "ItemColumns",
    "LlamaEncoder",
    "LocalrecError",
    "ModelError",
    "ModelFileError",
    "ModelNotFound",
    "ModelNotPulled",
    "ModelSpec",
    "NetworkDisabled",
    "NotEncoded",
    "Recommendation",
    "RecommendationList",
    "Recommender",
    "Registry",
    "RegistryError",
    "SchemaError",
    "Store",
    "TrainingError",
    "UnknownModel",
    "__version__",
    "add_events",
    "add_items",
    "add_model",
    "embed_texts",
    "encode_items",
    "list_models",
    "load_registry",
    "open_encoder",
    "pull_model",
    "resolve_model",
]
