"""`pack build --engine ray` on a local Ray cluster (2 CPUs, loopback only): the pack it
builds from a tuned Food-Kitchen slice equals the local build's (adapter rows, popularity,
neighbours, order-blind parts and users exactly, weights to the last bits of float64,
vectors at cosine >= 0.9999, the same eval numbers); event files (Parquet, CSV, JSON
Lines) give the aggregates of the same sequences; the errors say one line; and neither
the test process nor any process Ray starts connects anywhere but loopback."""

from __future__ import annotations

import importlib.util
import io
import json
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from localrec.data.loading import dataset_with_store
from localrec.evaluation.report import report_dict
from localrec.evaluation.runner import evaluate_dataset
from localrec.models.cache import resolve_model
from localrec.packs.aggregates import PrivateAggregates, local_aggregates
from localrec.packs.build import build_pack
from localrec.packs.format import read_pack
from localrec.packs.pack import open_pack
from localrec.scoring.adapter import AdapterConfig
from localrec.store import item_vectors
from localrec.store.item_vectors import stale_count
from localrec.tuning.run import tune_dataset
from localrec.tuning.storage import store_adapter
from scripts.food_kitchen import write_popular_slice
from tests.conftest import NetworkBlocked, in_ci, link_models, require_data
from tests.helpers import (
    assert_clean,
    catalogue_events,
    catalogue_items,
    invoke,
    subprocess_env,
    write_csv,
    write_jsonl,
)
from tests.packs.ray_cluster import allow_loopback_only
from tests.packs.test_ray_counting import assert_same_weights

ITEMS_PER_DOMAIN = 100


def _require_ray() -> None:
    # Not imported here: ray_engine imports it after setting up its environment.
    if importlib.util.find_spec("ray") is None:
        if in_ci():
            pytest.fail("ray is not installed; CI installs .[test], which has it")
        pytest.skip("ray is not installed (pip install 'localrec[ray]')")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, pulled_home: Path) -> Iterator[Any]:
    """One local Ray cluster of 2 CPUs for the module (starting one takes 10-20 s). Its
    processes get a LOCALREC_HOME of their own with the session's model (and its twin)."""
    _require_ray()
    from localrec.packs.ray_engine import ray_engine

    home = link_models(pulled_home, tmp_path_factory.mktemp("ray-home"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LOCALREC_HOME", str(home))
        allow_loopback_only(patch)
        with ray_engine(workers=2) as engine:
            yield engine


@pytest.fixture
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """This test may connect to loopback (Ray), nowhere else."""
    allow_loopback_only(monkeypatch)


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Food-Kitchen's 150 most-bought items of each domain and every event on them."""
    return write_popular_slice(
        require_data(), tmp_path_factory.mktemp("fk") / "shop", ITEMS_PER_DOMAIN
    )


def _forget_item_vectors(dataset_dir: Path) -> None:
    _, cache, _ = dataset_with_store(dataset_dir)
    with cache, cache.write() as conn:
        conn.execute("DELETE FROM vectors WHERE kind = 'item'")
        conn.execute("DELETE FROM matrices")


def _localrec_rows(pack: Path, dataset_dir: Path) -> dict[tuple[str, str, str], float]:
    report = report_dict(
        evaluate_dataset(dataset_dir, pack=open_pack(pack), methods=(), n_negatives=99)
    )
    return {
        (r["method"], r["setting"], r["domain"]): r["ndcg@10"]
        for r in report["results"]
        if str(r["method"]).startswith("localrec")
    }


def assert_same_aggregates(got: PrivateAggregates, want: PrivateAggregates) -> None:
    """Counts exactly; weights (item-kNN's and the order-blind parts') as
    `assert_same_weights` compares them."""
    assert got.sequences == want.sequences
    np.testing.assert_array_equal(got.users, want.users)
    np.testing.assert_array_equal(got.popularity, want.popularity)
    assert_same_weights(got.similarity, want.similarity)
    assert sorted(got.parts) == sorted(want.parts)
    for name, weights in want.parts.items():
        assert_same_weights(got.parts[name], weights)
    assert got.recency_decay == want.recency_decay


def test_the_cli_builds_from_event_files_what_the_local_build_makes_of_the_same_events(
    model_home: Path, tmp_path: Path
) -> None:
    """In a process of its own, under strace: `pack build --engine ray --events` starts a
    local Ray, encodes and counts there; then the local build of the same events, added
    to the database. No process of the Ray run connects to anything but loopback."""
    _require_ray()
    strace = shutil.which("strace")
    db = tmp_path / "shop.db"
    items = write_csv(tmp_path / "items.csv", catalogue_items())
    events = tmp_path / "events"
    events.mkdir()
    rows = catalogue_events()
    write_jsonl(events / "first.jsonl", rows[: len(rows) // 2])
    write_jsonl(events / "second.jsonl", rows[len(rows) // 2 :])
    assert_clean(invoke("--db", str(db), "add", "items", str(items)), 0)
    ray_pack, local_pack, log = tmp_path / "ray.lrpack", tmp_path / "local.lrpack", tmp_path / "log"
    command = [
        sys.executable, "-m", "localrec", "--db", str(db), "pack", "build", "--engine", "ray",
        "--workers", "2", "--events", str(events), "--out", str(ray_pack), "--json",
    ]  # fmt: skip
    if strace is not None:
        # --seccomp-bpf: only connect() stops the traced processes (without it every
        # system call of every Ray process did, and the test took 83 s instead of ~25 s).
        trace = ["-f", "--seccomp-bpf", "-qq", "-e", "trace=connect", "-o", str(log)]
        command = [strace, *trace, *command]
    proc = subprocess.run(
        command, env=subprocess_env(model_home), capture_output=True, text=True, timeout=600
    )
    if strace is not None and proc.returncode != 0 and "ptrace" in proc.stderr:
        pytest.skip(f"strace cannot trace here: {proc.stderr.strip()[:200]}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    built = json.loads(proc.stdout)
    assert built["users"] == len({r["user"] for r in rows}) and built["neighbour_pairs"] > 100
    if strace is not None:
        outside = [
            line
            for line in log.read_text().splitlines()
            if re.search(r"AF_INET6?\b", line)
            and not re.search(r'inet_addr\("127\.|"::1"|"::ffff:127\.', line)
        ]
        assert outside == []
        assert 'inet_addr("127.0.0.1")' in log.read_text()  # the trace saw Ray's connections
    events_file = write_jsonl(tmp_path / "events.jsonl", rows)
    assert_clean(invoke("--db", str(db), "add", "events", str(events_file)), 0)
    assert_clean(invoke("--db", str(db), "pack", "build", "--out", str(local_pack)), 0)
    ours, theirs = read_pack(ray_pack), read_pack(local_pack)
    np.testing.assert_array_equal(ours.popularity, theirs.popularity)
    np.testing.assert_array_equal(ours.similarity.indices, theirs.similarity.indices)
    np.testing.assert_array_equal(ours.similarity.data, theirs.similarity.data)  # float32
    np.testing.assert_array_equal(ours.vectors, theirs.vectors)


def _tune_with_every_part(shop: Path) -> None:
    """A small adapter (one epoch), its hybrid made to weigh co-occurrence and RP3beta
    beside item-kNN, so that the pack carries their `part:NAME` weights too."""
    adapter = tune_dataset(shop, config=AdapterConfig(dim=16, epochs=1, negatives=20))
    assert len(adapter.domains) == 2
    for domain in adapter.domains.values():
        for setting in ("mixed", "cross"):
            domain.cf_weights[setting] = {"itemknn": 1.0, "cooccurrence": 0.5, "rp3beta": 0.5}
    _, cache, _ = dataset_with_store(shop)
    with cache:
        store_adapter(cache, adapter)


def _adapter_arrays(payload: bytes | None) -> dict[str, np.ndarray]:
    assert payload is not None
    with np.load(io.BytesIO(payload), allow_pickle=False) as arrays:
        return {name: arrays[name] for name in arrays.files}


def test_the_ray_built_pack_equals_the_local_pack(
    cluster: Any, loopback_only: None, model_home: Path, shop: Path, tmp_path: Path
) -> None:
    """With a tuned adapter whose hybrid weighs every order-blind part: the same adapter
    rows, parts, neighbours and popularity, and the same eval numbers."""
    _tune_with_every_part(shop)  # encodes the items (the F16 twin where faster) and trains
    local = build_pack(tmp_path / "local.lrpack", dataset_dir=shop, full_precision=True)
    _forget_item_vectors(shop)
    said: list[str] = []
    built = build_pack(
        tmp_path / "ray.lrpack",
        dataset_dir=shop,
        full_precision=True,
        engine="ray",
        step=said.append,
    )
    assert f"encoded {2 * ITEMS_PER_DOMAIN} items (0 had a vector)" in " ".join(said)
    spec = resolve_model(None)[0]
    dataset, cache, _ = dataset_with_store(shop)
    with cache, pytest.MonkeyPatch.context() as patch:
        # Ray's encoding recorded, as `encode` does, that no vector is stale.
        patch.setattr(item_vectors, "iter_item_texts", None)  # no rendering to count them
        domains = dataset.domain_names
        assert [stale_count(cache, spec.name, spec.document_prefix, d) for d in domains] == [0, 0]
    assert (built.items, built.users, built.pairs) == (local.items, local.users, local.pairs)
    assert built.users > 5_000 and built.pairs > 1_000
    assert built.adapter_items == local.adapter_items > ITEMS_PER_DOMAIN
    ours, theirs = read_pack(built.path), read_pack(local.path)
    assert ours.ids == theirs.ids and ours.domains == theirs.domains
    np.testing.assert_array_equal(ours.popularity, theirs.popularity)
    assert (ours.popularity > 0).sum() > ITEMS_PER_DOMAIN
    assert set(theirs.parts) == {"cooccurrence", "rp3beta"}
    assert all(weights.nnz > 1_000 for weights in theirs.parts.values())
    users = np.zeros(len(ours.ids), np.int64)  # not in a pack: compared through the counts
    assert_same_aggregates(
        PrivateAggregates(ours.similarity, ours.popularity, users, 0, 0.8, ours.parts),
        PrivateAggregates(theirs.similarity, theirs.popularity, users, 0, 0.8, theirs.parts),
    )
    assert ours.meta["adapter"] == theirs.meta["adapter"]
    our_rows, their_rows = _adapter_arrays(ours.adapter), _adapter_arrays(theirs.adapter)
    assert our_rows.keys() == their_rows.keys()
    for name, array in their_rows.items():  # learned rows, seen items, counts
        if array.dtype.kind == "f":
            np.testing.assert_allclose(our_rows[name], array, rtol=1e-5, atol=1e-6)
        else:
            np.testing.assert_array_equal(our_rows[name], array)
    cosine = (ours.vectors * theirs.vectors).sum(axis=1) / (
        np.linalg.norm(ours.vectors, axis=1) * np.linalg.norm(theirs.vectors, axis=1)
    )
    assert cosine.min() >= 0.9999
    assert _localrec_rows(built.path, shop) == _localrec_rows(local.path, shop)


def _event_rows(sequences: list[np.ndarray]) -> list[dict[str, Any]]:
    return [
        {"user": f"u{u:05d}", "item": str(int(item)), "time": 1_700_000_000 + 60 * t}
        for u, sequence in enumerate(sequences)
        for t, item in enumerate(sequence.tolist())
    ]


def _write_events(directory: Path, kind: str, rows: list[dict[str, Any]]) -> Path:
    """The events in two files of one kind (users split between them arbitrarily)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    directory.mkdir()
    halves = (rows[0::2], rows[1::2])
    for n, half in enumerate(halves):
        if kind == "parquet":
            pq.write_table(pa.Table.from_pylist(half), directory / f"part-{n}.parquet")
        elif kind == "csv":
            write_csv(directory / f"part-{n}.csv", half)
        else:
            write_jsonl(directory / f"part-{n}.jsonl", half)
    return directory


# (JSON Lines: the CLI test below.)
@pytest.mark.parametrize("kind", ["parquet", "csv"])
def test_event_files_give_the_aggregates_of_the_same_sequences(
    cluster: Any, loopback_only: None, shop: Path, tmp_path: Path, kind: str
) -> None:
    from localrec.packs.sources import chunks_from_events

    dataset, _, _ = dataset_with_store(shop)
    sequences = [np.asarray(s, np.int64) for s in dataset.train[:4000]]
    events = _write_events(tmp_path / "events", kind, _event_rows(sequences))
    ids = [str(i) for i in range(dataset.n_items)]
    chunks = chunks_from_events(cluster.ray, events, ids, cluster.workers)
    got = cluster.aggregates(chunks, dataset.n_items, 2, 100)
    want = local_aggregates(sequences, dataset.n_items, 2, 100)
    assert want.similarity.nnz > 100 and (want.popularity > 0).sum() > 50
    assert_same_aggregates(got, want)


def test_a_missing_column_of_the_event_files_is_one_line_before_any_work(
    model_home: Path, tmp_path: Path
) -> None:
    db = tmp_path / "shop.db"
    items = write_csv(tmp_path / "items.csv", catalogue_items()[:10])
    assert_clean(invoke("--db", str(db), "add", "items", str(items)), 0)
    events = tmp_path / "events"
    events.mkdir()
    write_jsonl(events / "a.jsonl", [{"user": "u1", "item": "k000", "when": 1}])
    out = tmp_path / "shop.lrpack"
    result = invoke(
        "--db", str(db), "pack", "build", "--engine", "ray", "--events", str(events),
        "--out", str(out),
    )  # fmt: skip
    assert_clean(result, 1)
    assert result.stderr.strip().splitlines() == [
        f"Error: {events / 'a.jsonl'}: the events have no column 'time'; they have user, item, when"
    ]
    assert not out.exists()


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({}, "the directory has no event files (.parquet, .csv, .jsonl, .ndjson)"),
        ({"a.csv": "user,item,time\n", "b.jsonl": "{}\n"}, "found .csv, .jsonl"),
        ({"a.txt": "x\n"}, "event files must all end in one of .parquet, .csv, .jsonl"),
        ({"a.csv": "user,item\nu1,k000\n"}, "a.csv: the events have no column 'time'"),
        ({"a.jsonl": "\n{oops\n"}, "a.jsonl: the first event is not JSON"),
        ({"a.parquet": "not parquet"}, "a.parquet: not a Parquet file"),
    ],
)
def test_event_files_that_cannot_be_read_are_one_line_before_ray_starts(
    tmp_path: Path, files: dict[str, str], message: str
) -> None:
    from localrec.errors import InputError
    from localrec.packs.sources import check_events

    events = tmp_path / "events"
    events.mkdir()
    for name, text in files.items():
        (events / name).write_text(text, encoding="utf-8")
    with pytest.raises(InputError, match=re.escape(message)):
        check_events(events)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--address", "head:6379"], "--address is an option of --engine ray"),
        (["--workers", "2"], "--workers is an option of --engine ray"),
        (["--engine", "ray", "--events", "."], "--events are read into a database's pack"),
    ],
)
def test_ray_options_out_of_place_are_one_line(
    tmp_path: Path, args: list[str], message: str
) -> None:
    result = invoke("pack", "build", str(tmp_path), "--out", str(tmp_path / "x.lrpack"), *args)
    assert_clean(result, 1)
    assert message in result.stderr


def test_an_address_nothing_answers_on_is_one_line_at_once(
    loopback_only: None, model_home: Path, tmp_path: Path
) -> None:
    """Ray alone would wait minutes for a cluster there."""
    _require_ray()
    db = tmp_path / "shop.db"
    items = write_csv(tmp_path / "items.csv", catalogue_items()[:5])
    assert_clean(invoke("--db", str(db), "add", "items", str(items)), 0)
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    out = tmp_path / "x.lrpack"
    result = invoke(
        "--db", str(db), "pack", "build", "--engine", "ray", "--address", f"127.0.0.1:{port}",
        "--out", str(out),
    )  # fmt: skip
    assert_clean(result, 1)
    assert result.stderr.strip().splitlines() == [
        f"Error: --address 127.0.0.1:{port}: nothing answers there (Connection refused); "
        "start the cluster with `ray start --head` on that node, or check the address"
    ]
    assert not out.exists()


def test_without_ray_the_engine_says_how_to_install_it(
    model_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    db = tmp_path / "shop.db"
    items = write_csv(tmp_path / "items.csv", catalogue_items()[:5])
    assert_clean(invoke("--db", str(db), "add", "items", str(items)), 0)
    result = invoke(
        "--db", str(db), "pack", "build", "--engine", "ray", "--out", str(tmp_path / "x.lrpack")
    )
    assert_clean(result, 1)
    assert result.stderr.strip().splitlines() == [
        "Error: --engine ray needs Ray, which is not installed: pip install 'localrec[ray]'"
    ]


@pytest.mark.parametrize(
    "address",
    [("192.0.2.1", 9), ("10.255.255.1", 80), ("8.8.8.8", 53), ("::ffff:8.8.8.8", 53)],
)
def test_the_ray_tests_may_reach_loopback_and_nothing_else(
    loopback_only: None, address: tuple[str, int]
) -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    try:
        with socket.create_connection(server.getsockname(), timeout=1):
            pass
        family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        with socket.socket(family, socket.SOCK_DGRAM) as client:
            with pytest.raises(NetworkBlocked):
                client.connect(address)
            with pytest.raises(NetworkBlocked):
                client.connect_ex(address)
        with pytest.raises(NetworkBlocked):
            socket.create_connection(address, timeout=1)
        with pytest.raises(NetworkBlocked):
            socket.getaddrinfo("huggingface.co", 443)
    finally:
        server.close()
