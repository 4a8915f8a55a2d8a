"""`pack build --engine ray`: the two stages of a pack build that outgrow one machine, on Ray.

Encoding: the items that have no current vector go through Ray Data `map_batches` over a
pool of actors; each actor checks the model file, loads it once (as its F16 twin where
that is faster on its CPU) with as many threads and contexts as it has CPUs, and the
vectors are written back into the database by item id, batch by batch.

Counting: chunks of users' sequences are mapped to the very counts the local build makes
(`forward_pair_weights`, `pair_users`, `item_counts`, `item_users`, summed per chunk),
grouped by blocks of source items and summed; each block then gets the local build's
normalisation, K-threshold and top-N (`pair_normalisers`, `private_similarity`). The
hybrid's order-blind parts the adapter weighs (co-occurrence, RP3beta) are counted the same
way: each chunk's co-occurrence counts (`cooccurrence_counts`) and RP3beta walk
(`rp3beta_walk`), summed per block, normalised (`rp3beta_normalisers`) and thresholded on
the users who had both items (those map and reduce functions: `packs.ray_counting`). Only
the kept pairs come back to the driver. The adapter is
trained on one node (`localrec tune`); the build prunes its rows with the counted users.

Ray is imported here only, when the engine is used: `pip install 'localrec[ray]'`.
"""

from __future__ import annotations

import logging
import math
import os
import re
import socket
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

from localrec import errors
from localrec.embedding.f16_twin import runtime_path
from localrec.embedding.llama_encoder import LlamaEncoder
from localrec.errors import EngineError, LocalrecError, ModelFileError
from localrec.models.registry import ModelSpec
from localrec.models.verify import verify_file
from localrec.packs.aggregates import (
    PrivateAggregates,
)
from localrec.packs.ray_counting import (
    PARTS,
    Columns,
    assemble,
    block_aggregates,
    chunk_counts,
)
from localrec.store.db import Store
from localrec.store.item_vectors import ENCODE_CHUNK, mark_encoded, pending_items

__all__ = ["RAY_MISSING", "RayEngine", "ray_engine", "unwrap_ray_error"]

RAY_MISSING = "--engine ray needs Ray, which is not installed: pip install 'localrec[ray]'"
# Where every HTTP request of a local cluster's processes goes: a closed loopback port.
# Ray's head process asks cloud metadata servers (169.254.169.254) which cloud it runs
# on even with usage stats off; localrec sends nothing off the machine.
_DEAD_PROXY = "http://127.0.0.1:9"
_LOOPBACK = "127.0.0.1,localhost,::1"
# Set for as long as the engine runs: no usage statistics, neither Ray's nor Ray Data's
# (whose driver-side collector otherwise queries a Prometheus on localhost:9090).
_QUIET_ENV = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_DATA_USAGE_DISABLED": "1"}
_LOCAL_ENV = {
    **_QUIET_ENV,
    # A cluster on this machine only: Ray then takes loopback as the node's address
    # instead of probing a public DNS server's address for it.
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    "http_proxy": _DEAD_PROXY,
    "https_proxy": _DEAD_PROXY,
    "HTTP_PROXY": _DEAD_PROXY,
    "HTTPS_PROXY": _DEAD_PROXY,
    "no_proxy": _LOOPBACK,
    "NO_PROXY": _LOOPBACK,
}
# How long --address may take to accept a connection.
_PROBE_SECONDS = 10
# Items per block of the encoding dataset, at most (each block goes to one actor).
_ENCODE_BLOCK = 1024
# Blocks of source items per worker in the counting shuffle.
_BLOCKS_PER_WORKER = 8
# The last line of a traceback of one of localrec's errors.
_RAISED = re.compile(r"^localrec\.errors\.(\w+): (.+)$", re.MULTILINE)


def unwrap_ray_error(exc: BaseException) -> LocalrecError:
    """The LocalrecError a Ray task or actor raised, as it was raised (Ray wraps it in
    errors of its own, whose messages carry tracebacks), or one line for any other failure."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, LocalrecError) and type(current).__module__ == "localrec.errors":
            return current
        todo += [getattr(current, "cause", None), current.__cause__, current.__context__]
    # Ray Data passes a task's error on as the text of its traceback only.
    text = str(exc)
    for name, message in reversed(_RAISED.findall(text)):
        kind = getattr(errors, name, None)
        if isinstance(kind, type) and issubclass(kind, LocalrecError):
            return kind(message.strip())
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return EngineError(
        f"Ray failed: {type(exc).__name__}: {lines[0] if lines else ''} (Ray's logs: "
        "/tmp/ray/session_latest/logs on the head node)"
    )


def _check_reachable(address: str) -> None:
    """A HOST:PORT (or ray://HOST:PORT) address that nothing answers on, said at once:
    Ray itself waits minutes for it."""
    target = address.removeprefix("ray://")
    host, _, port = target.rpartition(":")
    if not host or not port.isdigit():
        return  # "auto", or a form Ray resolves itself
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=_PROBE_SECONDS).close()
    except OSError as exc:
        raise EngineError(
            f"--address {address}: nothing answers there ({exc.strerror or exc}); start the "
            "cluster with `ray start --head` on that node, or check the address"
        ) from None


def _import_ray(local: bool) -> Any:
    imported = "ray" in sys.modules
    try:
        import ray
        import ray.data
    except ImportError:
        raise EngineError(RAY_MISSING) from None
    if local and imported:
        # Imported before RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER was set: what it would have set.
        ray._private.ray_constants.ENABLE_RAY_CLUSTER = False
    return ray


@contextmanager
def ray_engine(address: str | None = None, workers: int | None = None) -> Iterator[RayEngine]:
    """Ray, connected to the cluster at `address`, or to a cluster of `workers` CPUs (all of
    them by default) started here on loopback and stopped afterwards. A Ray this process
    has already initialised is used as it is (and left running)."""
    if workers is not None and workers < 1:
        raise EngineError(f"--workers must be 1 or more, got {workers}")
    # Set while Ray runs; the processes it starts inherit them.
    with mock.patch.dict(os.environ, _QUIET_ENV if address else _LOCAL_ENV):
        ray = _import_ray(address is None)
        if address:
            _check_reachable(address)
        started = not ray.is_initialized()
        if started:
            _start(ray, address, workers)
        try:
            context = ray.data.DataContext.get_current()
            context.enable_progress_bars = False
            context.print_on_execution_start = False
            # A failed task is said in one line (`unwrap_ray_error`); Ray Data would print
            # its traceback too. It stays in Ray's logs.
            logging.getLogger("ray.data").setLevel(logging.CRITICAL)
            cpus = int(ray.cluster_resources().get("CPU", 1))
            yield RayEngine(ray, max(1, min(workers or cpus, cpus)))
        finally:
            if started:
                ray.shutdown()


def _start(ray: Any, address: str | None, workers: int | None) -> None:
    options: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.ERROR}
    if address:
        options["address"] = address
    else:
        options.update(
            num_cpus=workers or os.cpu_count() or 1,
            include_dashboard=False,
            _node_ip_address="127.0.0.1",
        )
    try:
        ray.init(**options)
    except Exception as exc:
        where = f"the Ray cluster at {address}" if address else "a local Ray cluster"
        raise EngineError(
            f"could not start or reach {where}: {str(exc).strip().splitlines()[-1]}"
        ) from None


@dataclass
class EncodeResult:
    """What `RayEngine.encode` did."""

    encoded: int
    skipped: int
    seconds: float


class _EncodeActor:
    """One Ray actor of the encoding pool: the model loaded once, by path (never fetched)."""

    def __init__(self, path: str, spec: ModelSpec, sha256: str | None) -> None:
        import ray

        gguf = Path(path)
        runtime: Any = ray.get_runtime_context()
        node = runtime.get_node_id()[:12]
        if not gguf.is_file():
            raise ModelFileError(
                f"{gguf}: the model file is not on Ray node {node}; every node needs it at "
                "this path (a shared directory, or copy it there)"
            )
        if sha256:
            verify_file(gguf, sha256, f"copy the model file to Ray node {node} again")
        cpus = runtime.get_assigned_resources().get("CPU", 1.0)
        self.encoder = LlamaEncoder(runtime_path(gguf, spec), spec, n_threads=max(1, int(cpus)))

    def __call__(self, batch: Columns) -> Columns:
        vectors = self.encoder.encode([str(text) for text in batch["text"]])
        return {"id": batch["id"], "hash": batch["hash"], "vector": vectors}


class RayEngine:
    """A connected Ray and how many CPUs (workers) its stages use."""

    def __init__(self, ray: Any, workers: int) -> None:
        self.ray = ray
        self.workers = workers

    def run(self, what: Callable[[], Any]) -> Any:
        """`what()`, with a failure inside Ray turned into one LocalrecError."""
        try:
            return what()
        except LocalrecError:
            raise
        except Exception as exc:
            raise unwrap_ray_error(exc) from None

    def encode(
        self,
        store: Store,
        spec: ModelSpec,
        gguf: Path,
        sha256: str | None,
        *,
        force: bool = False,
        batch_size: int = ENCODE_CHUNK,
        progress: Callable[[int, int], None] | None = None,
    ) -> EncodeResult:
        """Encode the items of `store` whose `spec` vector is missing or stale on a pool of
        `workers` actors of one CPU each; the vectors are stored batch by batch."""
        import pyarrow as pa

        start = time.perf_counter()
        run = pending_items(store, spec, force=force)
        pending, skipped = run.items, run.skipped
        total, done, writes = len(pending), 0, 0
        if progress:
            progress(0, total)
        if pending:
            table = pa.table(
                {
                    "id": [i for i, _, _ in pending],
                    "text": [t for _, t, _ in pending],
                    "hash": [h for _, _, h in pending],
                }
            )
            # Batches of `batch_size` consecutive items, as `encode_items` encodes them (a
            # Q8_0 model's vectors depend a little on what else is in the batch), in
            # blocks of whole batches: enough for every actor, none over _ENCODE_BLOCK.
            per_block = math.ceil(total / (self.workers * 4) / batch_size) * batch_size
            size = max(batch_size, min(_ENCODE_BLOCK, per_block))
            blocks = [table.slice(o, size) for o in range(0, total, size)]
            dataset = self.ray.data.from_arrow(blocks).map_batches(
                _EncodeActor,
                fn_constructor_kwargs={"path": str(gguf), "spec": spec, "sha256": sha256},
                batch_size=batch_size,
                batch_format="numpy",
                compute=self.ray.data.ActorPoolStrategy(size=self.workers),
                num_cpus=1,
            )

            def stream() -> None:
                nonlocal done, writes
                for batch in dataset.iter_batches(batch_size=None, batch_format="numpy"):
                    ids = [str(i) for i in batch["id"]]
                    with store.write() as conn:
                        store.put_vectors(
                            conn, spec.name, ids, [str(h) for h in batch["hash"]], batch["vector"]
                        )
                    done += len(ids)
                    writes += 1
                    if progress:
                        progress(done, total)

            self.run(stream)
        mark_encoded(store, run, writes)
        if not store.packed_is_current(spec.name):
            store.pack_matrix(spec.name)
        return EncodeResult(done, skipped, time.perf_counter() - start)

    def aggregates(
        self,
        chunks: Any,
        n_items: int,
        min_users: int,
        neighbours: int,
        parts: tuple[str, ...] = (),
    ) -> PrivateAggregates:
        """The pack's aggregates from a dataset of sequence chunks (`sources`): pairs and
        item counts per chunk, summed per block of source items, thresholded there; with
        the order-blind `parts` named (`local_aggregates`'s)."""
        unknown = [name for name in parts if name not in PARTS]
        if unknown:
            raise EngineError(f"the Ray engine does not count the part(s) {', '.join(unknown)}")
        block_rows = max(1, math.ceil(n_items / (self.workers * _BLOCKS_PER_WORKER)))
        blocks = math.ceil(n_items / block_rows)
        reduced = chunks.map_batches(
            chunk_counts,
            fn_kwargs={"n_items": n_items, "block_rows": block_rows, "parts": parts},
            batch_size=1,
            batch_format="numpy",
        )
        reduced = reduced.groupby("block", num_partitions=min(blocks, self.workers * 2))
        reduced = reduced.map_groups(
            block_aggregates,
            fn_kwargs={
                "n_items": n_items,
                "block_rows": block_rows,
                "min_users": min_users,
                "neighbours": neighbours,
                "parts": parts,
            },
            batch_format="numpy",
        )
        blocks_out: list[Columns] = self.run(
            lambda: list(reduced.iter_batches(batch_size=None, batch_format="numpy"))
        )
        return assemble(blocks_out, n_items, min_users, parts)
