"""`tune --sample-users`: training and choosing on a seeded sample of the training users."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from localrec.data.dataset import TRAIN_FILES, SequenceDataset, load_dataset
from localrec.data.loading import db_as_dataset
from localrec.data.sampling import UserSample
from localrec.errors import InputError
from localrec.scoring.adapter import AdapterConfig, TrainedAdapter
from localrec.store.db import Store
from localrec.store.ingest import add_events, add_items
from localrec.tuning.run import tune_summary
from localrec.tuning.storage import adapter_bytes, adapter_from_stored, adapter_meta
from localrec.tuning.train import build_pairs, train_adapter
from tests.helpers import invoke
from tests.synthetic import purchases, synthetic

CONFIG = AdapterConfig(dim=8, epochs=2, negatives=20, batch_size=256, min_pairs=10, seed=3)
IDS = [str(i) for i in range(120)]


def _write(root: Path, dataset: SequenceDataset) -> Path:
    """The synthetic dataset as a dataset directory, its training users in three files."""
    root.mkdir()
    with (root / "items.jsonl").open("w") as f:
        for i in range(dataset.n_items):
            domain = dataset.domain_names[dataset.domains[i]]
            f.write(json.dumps({"item_id": i, "domain": domain, "title": f"item {i}"}) + "\n")

    def lines(sequences: list[np.ndarray]) -> str:
        return "".join(f"{n}\t{','.join(map(str, s.tolist()))}\n" for n, s in enumerate(sequences))

    thirds = np.array_split(np.arange(len(dataset.train)), 3)
    for name, rows in zip(TRAIN_FILES, thirds, strict=True):
        (root / name).write_text(lines([dataset.train[r] for r in rows]))
    (root / "valid.txt").write_text(lines(dataset.valid))
    (root / "test.txt").write_text(lines(dataset.test))
    return root


@pytest.fixture
def directory(tmp_path: Path) -> tuple[Path, np.ndarray]:
    dataset, vectors = synthetic()
    return _write(tmp_path / "synthetic", dataset), vectors


def _chosen(adapter: TrainedAdapter) -> dict[str, Any]:
    """What tune chose per domain, without the timings."""
    domains: dict[str, dict[str, Any]] = adapter_meta(adapter)["domains"]
    return {d: {k: v for k, v in a.items() if k != "seconds"} for d, a in domains.items()}


def _rows(dataset: SequenceDataset) -> list[tuple[int, ...]]:
    return [tuple(s.tolist()) for s in dataset.train]


def test_the_sample_is_the_same_for_the_same_seed_and_so_is_the_adapter(
    directory: tuple[Path, np.ndarray],
) -> None:
    path, vectors = directory
    first, again = load_dataset(path, 500, seed=3), load_dataset(path, 500, seed=3)
    other = load_dataset(path, 500, seed=4)
    assert _rows(first) == _rows(again) != _rows(other)
    assert first.sample == UserSample(users=500, of=3000, seed=3)
    one = train_adapter(first, vectors, "fake", IDS, CONFIG)
    two = train_adapter(again, vectors, "fake", IDS, CONFIG)
    assert adapter_bytes(one) == adapter_bytes(two)
    assert _chosen(one) == _chosen(two)


def test_the_sample_is_bounded_to_its_users(directory: tuple[Path, np.ndarray]) -> None:
    path, vectors = directory
    everyone = load_dataset(path)
    sample = load_dataset(path, 300, seed=3)
    assert len(sample.train) == 300
    # Whole sequences of distinct training lines, in file order, from all three files.
    assert set(_rows(sample)) <= set(_rows(everyone))
    assert len(sample.valid) == len(everyone.valid)  # the valid split is not sampled
    adapter = train_adapter(sample, vectors, "fake", IDS, CONFIG)
    # Only the sample's prefix -> next pairs were trained on: each user's 3 items give one
    # pair ending in each domain.
    pairs = sum(
        len(build_pairs(sample.train, sample.domains, d, 120, 1.0, CONFIG.max_prefix))
        for d in range(2)
    )
    assert adapter.train_pairs == pairs == 600
    assert train_adapter(everyone, vectors, "fake", IDS, CONFIG).train_pairs == 6000
    assert adapter.counts is not None and adapter.counts.sum() == 300 * 3


def test_the_sample_is_recorded_in_the_stored_adapter_and_the_summary(
    directory: tuple[Path, np.ndarray],
) -> None:
    path, vectors = directory
    adapter = train_adapter(load_dataset(path, 500, seed=3), vectors, "fake", IDS, CONFIG)
    again = adapter_from_stored(adapter_meta(adapter), adapter_bytes(adapter))
    assert again.sample == UserSample(500, 3000, 3)
    last = tune_summary(again)[-1]
    assert last.startswith(f"trained on {adapter.train_pairs} pairs of a sample of 500 of 3000")
    assert "(seed 3)" in last


def test_without_sampling_nothing_changes(directory: tuple[Path, np.ndarray]) -> None:
    path, vectors = directory
    everyone = load_dataset(path)
    assert everyone.sample is None
    adapter = train_adapter(everyone, vectors, "fake", IDS, CONFIG)
    assert "sample" not in adapter_meta(adapter)
    assert " of a sample " not in tune_summary(adapter)[-1]
    # A sample of every user is every user, in the same order: the same adapter.
    whole = load_dataset(path, 3000, seed=9)
    assert _rows(whole) == _rows(everyone)
    same = train_adapter(whole, vectors, "fake", IDS, CONFIG)
    assert adapter_bytes(same) == adapter_bytes(adapter)
    assert _chosen(same) == _chosen(adapter)


@pytest.mark.parametrize(
    ("size", "message"),
    [
        (0, "--sample-users 0: a sample needs at least 1 user"),
        (-5, "--sample-users -5: a sample needs at least 1 user"),
        (3001, "--sample-users 3001: {root} has only 3000 training users; ask for at most 3000"),
    ],
)
def test_a_sample_size_out_of_range_is_refused(
    directory: tuple[Path, np.ndarray], size: int, message: str
) -> None:
    path, _ = directory
    with pytest.raises(InputError) as caught:
        load_dataset(path, size)
    assert str(caught.value).startswith(message.format(root=path))


@pytest.mark.parametrize(
    ("size", "message"),
    [
        ("0", "--sample-users 0: a sample needs at least 1 user"),
        ("3001", "--sample-users 3001: "),
    ],
)
def test_the_cli_refuses_a_sample_size_out_of_range_in_one_line(
    directory: tuple[Path, np.ndarray], size: str, message: str
) -> None:
    path, _ = directory
    result = invoke("tune", str(path), "--sample-users", size)
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    error = [line for line in result.output.splitlines() if line.strip()]
    assert len(error) == 1 and message in error[0], result.output


def _database(tmp_path: Path, sequences: list[list[int]]) -> Store:
    store = Store(tmp_path / "events.db")
    add_items(
        store, [{"id": str(i), "domain": "ab"[i // 60], "title": f"t{i}"} for i in range(120)]
    )
    add_events(store, purchases(sequences))
    return store


@pytest.mark.parametrize(("size", "seed"), [(40, 0), (40, 1), (100, 0)])
def test_a_database_reads_only_the_sampled_users(tmp_path: Path, size: int, seed: int) -> None:
    dataset, _ = synthetic()
    sequences = [[*s.tolist(), int(s[-1])] for s in dataset.train[:100]]  # 4 events each
    with _database(tmp_path, sequences) as store:
        everyone, _ = db_as_dataset(store, hold_out=2)
        sample, _ = db_as_dataset(store, hold_out=2, sample_users=size, seed=seed)
        again, _ = db_as_dataset(store, hold_out=2, sample_users=size, seed=seed)
        with pytest.raises(InputError, match=r"--sample-users 101: .* has only 100 training users"):
            db_as_dataset(store, hold_out=2, sample_users=101)
    assert sample.sample == UserSample(size, 100, seed)
    assert len(sample.train) == len(sample.test) == size
    assert _rows(sample) == _rows(again)
    assert set(_rows(sample)) <= set(_rows(everyone))
    if size == 100:  # every user: the same dataset as without sampling
        assert _rows(sample) == _rows(everyone)
        assert _rows(replace(sample, train=sample.test)) == _rows(
            replace(everyone, train=everyone.test)
        )
