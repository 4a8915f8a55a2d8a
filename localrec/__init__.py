"""localrec: private, fully offline cross-domain recommendations on the CPU."""

from __future__ import annotations

__version__ = "0.1.0"

import importlib
from typing import Any

# The public names, imported on first use: `import localrec` stays cheap (the CLI starts in
# a fraction of a second), and an app pays only for what it touches.
_EXPORTS = {
    "DatabaseError": "errors",
    "DatasetError": "errors",
    "EmbedResult": "embedding",
    "EvalReport": "protocol",
    "EncodeReport": "encode",
    "Encoder": "encoder",
    "EncoderError": "errors",
    "EventColumns": "ingest",
    "Explanation": "recommend",
    "IngestReport": "ingest",
    "InputError": "errors",
    "ItemColumns": "ingest",
    "LlamaEncoder": "encoder",
    "LocalrecError": "errors",
    "ModelError": "errors",
    "ModelFileError": "errors",
    "ModelNotFound": "errors",
    "ModelNotPulled": "errors",
    "ModelSpec": "registry",
    "NetworkDisabled": "errors",
    "NotEncoded": "errors",
    "PairedDifference": "comparison",
    "Recommendation": "recommend",
    "RecommendationList": "recommend",
    "Recommender": "recommend",
    "Registry": "registry",
    "RegistryError": "errors",
    "SchemaError": "errors",
    "Store": "db",
    "TrainingError": "errors",
    "UnknownModel": "errors",
    "AdapterConfig": "adapter",
    "TrainedAdapter": "adapter",
    "add_events": "ingest",
    "add_items": "ingest",
    "add_model": "model_cache",
    "embed_texts": "embedding",
    "encode_items": "encode",
    "evaluate_database": "evaluation",
    "evaluate_dataset": "evaluation",
    "list_models": "model_cache",
    "load_registry": "registry",
    "open_encoder": "encoder",
    "paired_differences": "comparison",
    "pull_model": "model_cache",
    "resolve_model": "model_cache",
    "tune_database": "tuning",
    "tune_dataset": "tuning",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'localrec' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


__all__ = [
    "AdapterConfig",
    "DatabaseError",
    "DatasetError",
    "EmbedResult",
    "EncodeReport",
    "Encoder",
    "EncoderError",
    "EvalReport",
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
    "PairedDifference",
    "Recommendation",
    "RecommendationList",
    "Recommender",
    "Registry",
    "RegistryError",
    "SchemaError",
    "Store",
    "TrainedAdapter",
    "TrainingError",
    "UnknownModel",
    "__version__",
    "add_events",
    "add_items",
    "add_model",
    "embed_texts",
    "encode_items",
    "evaluate_database",
    "evaluate_dataset",
    "list_models",
    "load_registry",
    "open_encoder",
    "paired_differences",
    "pull_model",
    "resolve_model",
    "tune_database",
    "tune_dataset",
]
