"""What the CLI prints as JSON or summary lines comes from the library, so a Python caller
gets the same data: threshold reports, eval's JSON, tune's summary, models and embeddings."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from localrec.cli.main import cli
from localrec.embedding.embed_texts import EmbedResult
from localrec.evaluation.report import report_dict
from localrec.evaluation.results import EvalReport, MetricRow, PairedDifference, SliceRow
from localrec.models.cache import CachedModel
from localrec.models.registry import ModelSpec
from localrec.recommend.threshold import ThresholdPoint, ThresholdReport
from localrec.scoring.adapter import AdapterConfig, DomainAdapter, TrainedAdapter
from localrec.tuning.run import tune_summary


def test_threshold_report_to_dict() -> None:
    low = ThresholdPoint(theta=0.1, precision=0.01, recall=0.5, mean_size=50.0)
    best = ThresholdPoint(theta=0.4, precision=0.25, recall=0.25, mean_size=1.0)
    data = ThresholdReport("books", 12, [low, best], best, ["only 12 user(s)"]).to_dict()
    assert data == {
        "domain": "books",
        "users": 12,
        "min_users": 30,
        "enough_users": False,
        "suggested": 0.4,
        "notes": ["only 12 user(s)"],
        "curve": [
            {
                "theta": 0.1,
                "precision": 0.01,
                "recall": 0.5,
                "f1": pytest.approx(2 * 0.01 * 0.5 / 0.51),
                "mean_size": 50.0,
            },
            {"theta": 0.4, "precision": 0.25, "recall": 0.25, "f1": 0.25, "mean_size": 1.0},
        ],
    }


def _row(method: str, ndcg: float) -> MetricRow:
    return MetricRow(method, "mixed", "food", ndcg, ndcg, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 7)


@pytest.mark.parametrize("negatives", [99, None], ids=["sampled", "full"])
def test_eval_report_dict(negatives: int | None) -> None:
    report = EvalReport(
        split="test",
        n_negatives=negatives,
        seed=42,
        rows=[_row("itemknn", 0.5)],
        slices=[SliceRow("rare-target", "itemknn", "mixed", "food", 0.25, 3)],
    )
    data = report_dict(report)
    assert list(data) == ["split", "negatives", "seed", "results", "slices"]
    assert (data["split"], data["negatives"], data["seed"]) == ("test", negatives, 42)
    assert data["results"] == report.as_dicts()
    assert data["results"][0]["ndcg@10"] == 0.5 and data["results"][0]["n"] == 7
    assert data["slices"] == [
        {
            "slice": "rare-target",
            "method": "itemknn",
            "setting": "mixed",
            "domain": "food",
            "ndcg@10": 0.25,
            "n": 3,
        }
    ]
    json.dumps(data)  # JSON-able as it is


def test_eval_report_dict_has_comparisons_only_when_asked() -> None:
    difference = PairedDifference("hybrid", "itemknn", "mixed", "food", 0.02, 0.01, 0.03, 7)
    report = EvalReport("test", 99, 1, [_row("hybrid", 0.6)], comparisons=[difference])
    assert report_dict(report)["comparisons"] == [difference.as_dict()]


def _domain(domain: int, rare: float | None) -> DomainAdapter:
    zero = np.zeros((1, 1), dtype=np.float32)
    return DomainAdapter(
        domain,
        zero,
        zero,
        zero,
        zero,
        zero,
        epoch=3,
        valid_ndcg={"mixed": 0.1234, "cross": 0.05},
        hybrid_weight={"mixed": 0.7, "cross": 0.5},
        hybrid_ndcg={"mixed": 0.15, "cross": 0.06},
        zero_shot_ndcg={"mixed": 0.1, "cross": 0.04},
        rare_weight=rare,
        cf_weights={"mixed": {"itemknn": 1.0, "walk": 0.25}, "cross": {"walk": 1.0}},
        cold_weight={"mixed": 1.0, "cross": 0.5},
        popularity_weight={"mixed": -0.25, "cross": 0.0},
        bias_shrink={"mixed": 0.5, "cross": 0.0},
        choices={
            "mixed": {
                "cases": 3043.0,
                "coverage@10": 0.6,
                "hub@10": 0.3,
                "itemknn coverage@10": 0.55,
                "itemknn hub@10": 0.4,
                "guards": 2.0,
                "ndcg adapter": 0.12,
                "ndcg itemknn": 0.13,
            }
        },
    )


def test_tune_summary_is_the_lines_tune_prints() -> None:
    adapter = TrainedAdapter(
        model="all-minilm-l6-v2",
        config=AdapterConfig(),
        domains={0: _domain(0, 0.3), 1: _domain(1, None)},
        domain_names=("food", "kitchen", "books"),
        item_ids=["a"],
        seen=np.zeros(1, dtype=bool),
        train_pairs=1234,
        seconds=56.4,
        dropped={"books": "it did not beat zero-shot text"},
    )
    mixed = (
        "  mixed: CF = 1 itemknn + 0.25 walk; CF weight 0.7, bias left out 0.5, popularity "
        "weight -0.25, cold users' text weight 1; hybrid 15.00% (zero-shot 10.00%; alone: "
        "adapter 12.00%, itemknn 13.00%; coverage@10 60.0% (itemknn 55.0%), hub@10 30.0% "
        "(itemknn 40.0%); 3043 cases; above every component alone, coverage not below "
        "item-kNN's)"
    )
    cross = (
        "  cross: CF = 1 walk; CF weight 0.5, bias left out 0, popularity weight 0, cold "
        "users' text weight 0.5; hybrid 6.00% (zero-shot 4.00%)"
    )
    head = "epoch 3, valid NDCG@10 of the adapter alone mixed 12.34%, cross 5.00%"
    assert tune_summary(adapter) == [
        f"food: {head}; collaborative weight for items seen 1-3 times 0.3",
        mixed,
        cross,
        f"kitchen: {head}; collaborative weight for items seen 1-3 times none",
        mixed,
        cross,
        "books: no adapter kept, zero-shot serves it: it did not beat zero-shot text",
        "trained on 1234 pairs in 56 s (model all-minilm-l6-v2)",
    ]


@pytest.mark.parametrize(
    ("path", "default", "on_disk"),
    [(Path("/m/a.gguf"), "a", True), (None, "other", False)],
    ids=["default-on-disk", "not-pulled"],
)
def test_cached_model_to_dict(path: Path | None, default: str, on_disk: bool) -> None:
    spec = ModelSpec(name="a", dim=8, pooling="mean", max_tokens=128, languages=("en",))
    row = CachedModel(spec, path, 1000 if on_disk else None, "user" if on_disk else None)
    data = row.to_dict(default)
    assert data["default"] is (default == "a")
    assert data["path"] == (str(path) if path else None)
    assert (data["name"], data["dim"], data["pooling"], data["max_tokens"]) == ("a", 8, "mean", 128)
    assert data["languages"] == ["en"] and data["size"] == (1000 if on_disk else None)


def test_models_list_json_is_each_models_to_dict(model_home: Path) -> None:
    from localrec.models.cache import list_models
    from localrec.models.registry import load_registry

    result = CliRunner().invoke(cli, ["models", "list", "--json"])
    registry = load_registry()
    assert json.loads(result.stdout) == [r.to_dict(registry.default) for r in list_models()]


def test_embed_result_summaries_and_lists() -> None:
    vectors = np.array([[3.0, 4.0, 0.0, 0.0, 1.0], [0.6, 0.8, 0.0, 0.0, 0.0]], dtype=np.float32)
    result = EmbedResult("m", vectors, truncated=0, max_tokens=128)
    assert result.dim == 5
    assert result.to_lists() == [[3.0, 4.0, 0.0, 0.0, 1.0], pytest.approx([0.6, 0.8, 0, 0, 0])]
    rows = result.summaries(["long", "unit"])
    assert [(r["text"], r["dim"]) for r in rows] == [("long", 5), ("unit", 5)]
    assert rows[0]["norm"] == pytest.approx(26**0.5) and rows[1]["norm"] == pytest.approx(1.0)
    assert rows[0]["first"] == [3.0, 4.0, 0.0, 0.0]
