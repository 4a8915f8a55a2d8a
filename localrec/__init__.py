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
    "EmbedResult": "embedding.embed_texts",
    "EvalReport": "evaluation.results",
    "EncodeReport": "store.item_vectors",
    "Encoder": "embedding.llama_encoder",
    "EncoderError": "errors",
    "EventColumns": "store.ingest",
    "Explanation": "recommend.results",
    "IngestReport": "store.ingest",
    "InputError": "errors",
    "ItemColumns": "store.ingest",
    "LlamaEncoder": "embedding.llama_encoder",
    "LocalrecError": "errors",
    "ModelError": "errors",
    "ModelFileError": "errors",
    "ModelNotFound": "errors",
    "ModelNotPulled": "errors",
    "ModelSpec": "models.registry",
    "NetworkDisabled": "errors",
    "NotEncoded": "errors",
    "PairedDifference": "evaluation.results",
    "Recommendation": "recommend.results",
    "RecommendationList": "recommend.results",
    "Recommender": "recommend.recommender",
    "Registry": "models.registry",
    "RegistryError": "errors",
    "SchemaError": "errors",
    "Store": "store.db",
    "TrainingError": "errors",
    "UnknownModel": "errors",
    "AdapterConfig": "scoring.adapter",
    "TrainedAdapter": "scoring.adapter",
    "add_events": "store.ingest",
    "add_items": "store.ingest",
    "add_model": "models.cache",
    "embed_texts": "embedding.embed_texts",
    "encode_items": "store.item_vectors",
    "evaluate_database": "evaluation.runner",
    "evaluate_dataset": "evaluation.runner",
    "list_models": "models.cache",
    "load_registry": "models.registry",
    "open_encoder": "embedding.llama_encoder",
    "paired_differences": "evaluation.comparison",
    "pull_model": "models.cache",
    "resolve_model": "models.cache",
    "tune_database": "tuning.run",
    "tune_dataset": "tuning.run",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'localrec' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"localrec.{module}"), name)
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
