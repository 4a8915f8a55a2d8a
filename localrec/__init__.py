"""localrec: private, fully offline cross-domain recommendations on the CPU."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what mypy and editors see: the real classes and functions, not Any
    __version__: str
    from localrec.embedding.embed_texts import (
        EmbedResult,
        embed_texts,
    )
    from localrec.embedding.llama_encoder import (
        Encoder,
        LlamaEncoder,
    )
    from localrec.embedding.loader import open_encoder
    from localrec.errors import (
        DatabaseCorrupt,
        DatabaseError,
        DatabaseLocked,
        DatabaseReadOnly,
        DatasetError,
        DiskFull,
        EncoderError,
        EngineError,
        InputError,
        LocalrecError,
        ModelError,
        ModelFileError,
        ModelNotFound,
        ModelNotPulled,
        NetworkDisabled,
        NotEncoded,
        PackError,
        RegistryError,
        RowRejected,
        SchemaError,
        ServeError,
        TrainingError,
        UnknownModel,
    )
    from localrec.evaluation.comparison import paired_differences
    from localrec.evaluation.results import (
        EvalReport,
        PairedDifference,
    )
    from localrec.evaluation.runner import (
        evaluate_database,
        evaluate_dataset,
    )
    from localrec.models.cache import (
        add_model,
        list_models,
        pull_model,
        resolve_model,
    )
    from localrec.models.registry import (
        ModelSpec,
        Registry,
        load_registry,
    )
    from localrec.packs.build import PackBuild, build_pack
    from localrec.packs.pack import Pack, open_pack
    from localrec.recommend.recommender import Recommender
    from localrec.recommend.results import (
        Explanation,
        Recommendation,
        RecommendationList,
    )
    from localrec.scoring.adapter import (
        AdapterConfig,
        TrainedAdapter,
    )
    from localrec.store.db import Store
    from localrec.store.ingest import (
        EventColumns,
        IngestReport,
        ItemColumns,
        add_events,
        add_items,
    )
    from localrec.store.item_vectors import (
        EncodeReport,
        encode_items,
    )
    from localrec.tuning.run import tune_database, tune_dataset

# The public names, imported on first use: `import localrec` stays cheap (the CLI starts in
# a fraction of a second), and an app pays only for what it touches.
_EXPORTS = {
    "DatabaseCorrupt": "errors",
    "DatabaseError": "errors",
    "DatabaseLocked": "errors",
    "DatabaseReadOnly": "errors",
    "DatasetError": "errors",
    "DiskFull": "errors",
    "EmbedResult": "embedding.embed_texts",
    "EvalReport": "evaluation.results",
    "EncodeReport": "store.item_vectors",
    "Encoder": "embedding.llama_encoder",
    "EncoderError": "errors",
    "EngineError": "errors",
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
    "Pack": "packs.pack",
    "PackBuild": "packs.build",
    "PackError": "errors",
    "PairedDifference": "evaluation.results",
    "Recommendation": "recommend.results",
    "RecommendationList": "recommend.results",
    "Recommender": "recommend.recommender",
    "Registry": "models.registry",
    "RegistryError": "errors",
    "RowRejected": "errors",
    "SchemaError": "errors",
    "ServeError": "errors",
    "Store": "store.db",
    "TrainingError": "errors",
    "UnknownModel": "errors",
    "AdapterConfig": "scoring.adapter",
    "TrainedAdapter": "scoring.adapter",
    "add_events": "store.ingest",
    "add_items": "store.ingest",
    "add_model": "models.cache",
    "build_pack": "packs.build",
    "embed_texts": "embedding.embed_texts",
    "encode_items": "store.item_vectors",
    "evaluate_database": "evaluation.runner",
    "evaluate_dataset": "evaluation.runner",
    "list_models": "models.cache",
    "load_registry": "models.registry",
    "open_encoder": "embedding.loader",
    "open_pack": "packs.pack",
    "paired_differences": "evaluation.comparison",
    "pull_model": "models.cache",
    "resolve_model": "models.cache",
    "tune_database": "tuning.run",
    "tune_dataset": "tuning.run",
}


def _version() -> str:
    """The installed distribution's version (pyproject.toml's, as CHANGELOG.md's latest)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("localrec")
    except PackageNotFoundError:  # imported from a checkout that was never installed
        return "0+unknown"


def __getattr__(name: str) -> Any:
    if name == "__version__":  # read from the package metadata on first use: one source
        globals()[name] = value = _version()
        return value
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'localrec' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"localrec.{module}"), name)
    globals()[name] = value
    return value


__all__ = [
    "AdapterConfig",
    "DatabaseCorrupt",
    "DatabaseError",
    "DatabaseLocked",
    "DatabaseReadOnly",
    "DatasetError",
    "DiskFull",
    "EmbedResult",
    "EncodeReport",
    "Encoder",
    "EncoderError",
    "EngineError",
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
    "Pack",
    "PackBuild",
    "PackError",
    "PairedDifference",
    "Recommendation",
    "RecommendationList",
    "Recommender",
    "Registry",
    "RegistryError",
    "RowRejected",
    "SchemaError",
    "ServeError",
    "Store",
    "TrainedAdapter",
    "TrainingError",
    "UnknownModel",
    "__version__",
    "add_events",
    "add_items",
    "add_model",
    "build_pack",
    "embed_texts",
    "encode_items",
    "evaluate_database",
    "evaluate_dataset",
    "list_models",
    "load_registry",
    "open_encoder",
    "open_pack",
    "paired_differences",
    "pull_model",
    "resolve_model",
    "tune_database",
    "tune_dataset",
]
