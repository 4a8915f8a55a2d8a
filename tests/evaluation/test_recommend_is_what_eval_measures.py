"""`eval` measures what `recommend` serves: after `tune`, the Recommender's top 10 for a
history and a candidate list is exactly eval's top 10 of the hybrid for the same case.

Both sides go through the scoring core (`HybridModel.score`): eval through its hybrid row
over the dataset's cached vectors and training sequences, the Recommender through a
database that holds the same items, vectors, adapter and training events. 200 Food-Kitchen
test users, both settings, real model.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from localrec.data.dataset import SequenceDataset
from localrec.data.loading import aligned_matrix, dataset_with_store
from localrec.data.protocol import SETTINGS, draw_candidates, make_cases
from localrec.evaluation.report import report_dict
from localrec.evaluation.runner import evaluate_dataset
from localrec.evaluation.scorers import HybridRow, hybrid_model, pack_scorers, pack_vectors
from localrec.models.cache import resolve_model
from localrec.packs.build import build_pack
from localrec.packs.pack import open_pack
from localrec.recommend.recommender import Recommender
from localrec.scoring.adapter import AdapterConfig
from localrec.store.db import Store
from localrec.store.ingest import add_events, add_items
from localrec.tuning.run import tune_dataset
from localrec.tuning.storage import load_adapter, store_adapter
from scripts.food_kitchen import write_slice
from tests.conftest import link_models, require_data

USERS = 200
NEGATIVES = 99


@dataclass
class Tuned:
    dataset: SequenceDataset
    db: Path  # the Recommender's database: the same items, vectors, adapter, training events
    hybrid: HybridRow  # eval's row of the tuned hybrid
    home: Path  # the LOCALREC_HOME it was tuned in (the dataset's cache is there)


@pytest.fixture(scope="module")
def tuned(tmp_path_factory: pytest.TempPathFactory, pulled_home: Path) -> Iterator[Tuned]:
    root = tmp_path_factory.mktemp("one-path")
    data = write_slice(require_data(), root / "food-kitchen-slice", USERS)
    home = link_models(pulled_home, root / "home")
    saved = os.environ.get("LOCALREC_HOME")
    os.environ["LOCALREC_HOME"] = str(home)
    try:
        tune_dataset(data, config=AdapterConfig(epochs=2, dim=16))
        spec, _ = resolve_model(None)
        dataset, cache, index = dataset_with_store(data)
        db = root / "app.db"
        with cache, Store(db) as store:
            vectors = aligned_matrix(cache, spec.name, index, spec.dim)
            model = hybrid_model(cache, spec, vectors, dataset, index)
            assert model is not None, "tune kept no adapter"
            ids = [str(i) for i in range(dataset.n_items)]
            add_items(
                store,
                (
                    {
                        "id": ids[i],
                        "domain": dataset.domain_names[dataset.domains[i]],
                        "title": dataset.item_text(i),
                    }
                    for i in range(dataset.n_items)
                ),
            )
            # User ids sort in training order, so item-kNN sums the pairs in eval's order.
            add_events(
                store,
                (
                    {"user": f"u{n:06d}", "item": ids[item], "action": "purchase", "time": t}
                    for n, sequence in enumerate(dataset.train)
                    for t, item in enumerate(sequence.tolist())
                ),
            )
            hashes = cache.vector_hashes(spec.name)
            with store.write() as conn:
                store.put_vectors(conn, spec.name, ids, [hashes[i] for i in ids], vectors)
            adapter = load_adapter(cache, spec.name)
            assert adapter is not None
            store_adapter(store, adapter)
        yield Tuned(dataset, db, HybridRow("localrec:hybrid", model), home)
    finally:
        if saved is None:
            os.environ.pop("LOCALREC_HOME", None)
        else:
            os.environ["LOCALREC_HOME"] = saved


@pytest.mark.parametrize("setting", SETTINGS)
def test_recommend_gives_exactly_evals_top_10_of_the_hybrid(tuned: Tuned, setting: str) -> None:
    dataset = tuned.dataset
    cases = make_cases(dataset.test, dataset, setting)  # type: ignore[arg-type]
    candidates = draw_candidates(cases, dataset, NEGATIVES, seed=42)
    assert len(cases) == USERS
    model = tuned.hybrid.model
    assert model.adapter.domains, "an adapter must have been kept for some domain"
    compared = {"adapter": 0, "zero-shot": 0, "cold": 0}
    with Recommender(tuned.db) as rec:
        assert rec.has_adapter()
        for n in range(len(cases)):
            history, cands, d = cases.histories[n], candidates[n], int(cases.domains[n])
            if not len(history):
                continue  # no history: recommend falls back to popular items, eval does not
            scores = tuned.hybrid.score([history], cands[None, :], d)[0]
            # eval's ranking: best first, ties in candidate order (as `select` breaks them)
            top = np.lexsort((np.arange(len(cands)), -scores))[:10]
            got = rec.recommend(
                history=[str(i) for i in history.tolist()],
                domain=dataset.domain_names[d],
                candidates=[str(i) for i in cands.tolist()],
                k=10,
                include_seen=True,
            )
            assert [r.item_id for r in got] == [str(cands[i]) for i in top], n
            np.testing.assert_allclose([r.score for r in got], scores[top], rtol=1e-9, atol=1e-12)
            assert got.user_vector == ("tuned-hybrid" if model.knows(d) else "zero-shot")
            kind = "adapter" if model.knows(d) else "zero-shot"
            if model.knows(d) and model.adapter.cold(history):
                kind = "cold"
            compared[kind] += 1
    # The comparison covered the hybrid proper, not only fallbacks.
    assert compared["adapter"] >= 25 and sum(compared.values()) >= 150, compared


@pytest.fixture(scope="module")
def packs(tuned: Tuned, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    """Packs of the tuned slice: one that keeps everything at full precision, and one with
    the defaults (K, N, int8 vectors)."""
    root = tmp_path_factory.mktemp("packs")
    data = tuned.dataset.root
    saved = os.environ.get("LOCALREC_HOME")
    os.environ["LOCALREC_HOME"] = str(tuned.home)
    try:
        built = {
            "everything": build_pack(
                root / "all.lrpack",
                dataset_dir=data,
                min_users=1,
                neighbours=0,
                full_precision=True,
            ).path,
            "default": build_pack(root / "default.lrpack", dataset_dir=data).path,
        }
        yield built
    finally:
        if saved is None:
            os.environ.pop("LOCALREC_HOME", None)
        else:
            os.environ["LOCALREC_HOME"] = saved


def _localrec_rows(report: dict[str, object]) -> dict[tuple[str, str, str], float]:
    rows = report["results"]
    assert isinstance(rows, list)
    return {
        (r["method"], r["setting"], r["domain"]): r["ndcg@10"]
        for r in rows
        if r["method"] in ("localrec:hybrid", "localrec:tuned")
    }


def test_eval_from_a_pack_that_keeps_everything_gives_the_database_served_numbers(
    tuned: Tuned, packs: dict[str, Path]
) -> None:
    """K = 1, every neighbour, float32: the pack path ranks exactly as the dataset's own."""
    os.environ["LOCALREC_HOME"] = str(tuned.home)
    options: dict[str, object] = {"methods": (), "n_negatives": NEGATIVES}
    served = report_dict(evaluate_dataset(tuned.dataset.root, **options))
    packed = report_dict(
        evaluate_dataset(tuned.dataset.root, pack=open_pack(packs["everything"]), **options)
    )
    assert len(_localrec_rows(served)) == 8
    assert _localrec_rows(packed) == _localrec_rows(served)


@pytest.mark.parametrize("setting", SETTINGS)
def test_recommend_from_a_pack_gives_evals_top_10_from_that_pack(
    tuned: Tuned, packs: dict[str, Path], tmp_path: Path, setting: str
) -> None:
    """A device serving the default pack ranks a case as `eval --pack` ranks it."""
    dataset = tuned.dataset
    pack = open_pack(packs["default"])
    # A pack carries the dataset's own item ids (the slice keeps Food-Kitchen's).
    ids = [str(int(i)) for i in dataset.item_ids]
    index = {item_id: i for i, item_id in enumerate(ids)}
    rows = pack_scorers(pack, pack_vectors(pack, index), dataset, index)
    hybrid = next(r for r in rows if r.name == "localrec:hybrid")
    cases = make_cases(dataset.test, dataset, setting)  # type: ignore[arg-type]
    candidates = draw_candidates(cases, dataset, NEGATIVES, seed=42)
    compared = 0
    with Recommender(tmp_path / "me.db", pack=pack) as rec:
        for n in range(0, len(cases), 4):
            history, cands, d = cases.histories[n], candidates[n], int(cases.domains[n])
            if not len(history):
                continue
            scores = hybrid.score([history], cands[None, :], d)[0]
            top = np.lexsort((np.arange(len(cands)), -scores))[:10]
            got = rec.recommend(
                history=[ids[i] for i in history.tolist()],
                domain=dataset.domain_names[d],
                candidates=[ids[i] for i in cands.tolist()],
                k=10,
                include_seen=True,
            )
            assert [r.item_id for r in got] == [ids[cands[i]] for i in top], n
            np.testing.assert_allclose([r.score for r in got], scores[top], rtol=1e-9, atol=1e-12)
            compared += 1
    assert compared >= 40
