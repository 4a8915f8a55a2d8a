"""Soak tests: SIGKILL at random points, then rerun; and several processes on one database.

Slow (minutes): excluded from the default run, run by `scripts/soak`.

- Crash safety: `add items`, `add events`, `encode` and `tune` are each killed with SIGKILL
  after LOCALREC_SOAK_KILLS (default 20) delays drawn by random.Random(0), and rerun. After
  every kill PRAGMA integrity_check is ok and the database is in a state an unkilled run
  passes through (nothing, everything, or for `encode` whole committed chunks); after the
  rerun it equals the state of a run that was never killed, row for row and vector BLOB for
  vector BLOB.
- Concurrency: two writers (events in small files; new items then `encode`) and four readers
  (`Recommender.recommend` with item-mean plus snapshot reads) share one database for
  LOCALREC_SOAK_SECONDS (default 60). Nobody sees "database is locked" or any other error,
  and nothing written is lost.

Every subprocess runs pinned to one CPU with one BLAS thread: llama.cpp and OpenBLAS spin
their threads, and on two busy cores that makes each run several times slower. A reference
run and a killed run always have the same thread count, because the float results (and so
the tuned adapter's bytes) depend on it.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import link_models
from tests.helpers import (
    catalogue_events,
    catalogue_items,
    remove_db,
    subprocess_env,
    write_jsonl,
)

pytestmark = pytest.mark.slow

SOAK_SECONDS = float(os.environ.get("LOCALREC_SOAK_SECONDS", "60"))
KILLS = int(os.environ.get("LOCALREC_SOAK_KILLS", "20"))
CPUS = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else [0]
DOMAINS = ("books", "kitchen", "music")
WORDS = ("red", "blue", "green", "tea", "pan", "song", "jazz", "novel", "steel", "oak")


# -- homes, processes and database states ------------------------------------------------


@pytest.fixture
def soak_home(pulled_home: Path, tmp_path: Path) -> Path:
    """A LOCALREC_HOME with the default model, as conftest's `model_home` builds it."""
    return link_models(pulled_home, tmp_path / "soak-home")


def child_env(home: Path) -> dict[str, str]:
    return subprocess_env(home, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")


def _pin(cpu: int) -> Callable[[], None] | None:
    if not hasattr(os, "sched_setaffinity"):
        return None
    return lambda: os.sched_setaffinity(0, {cpu})


def spawn(argv: list[str], home: Path, cpu: int, **kwargs: Any) -> subprocess.Popen[str]:
    return subprocess.Popen(
        argv,
        env=child_env(home),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_pin(cpu),
        **kwargs,
    )


def localrec(db: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "localrec", "--db", str(db), *args]


def run_ok(argv: list[str], home: Path, cpu: int = CPUS[0]) -> float:
    """Run to the end; returns the wall time."""
    start = time.monotonic()
    proc = spawn(argv, home, cpu)
    _, err = proc.communicate(timeout=900)
    assert proc.returncode == 0, f"{argv}: {err[-3000:]}"
    return time.monotonic() - start


@dataclass(frozen=True)
class DbState:
    """Row counts and content digests of the tables a run may change."""

    counts: dict[str, int]
    digests: dict[str, str]
    vectors: dict[tuple[str, str, str], tuple[int, str, bytes]]
    adapters: dict[tuple[str, str], tuple[str, bytes]]

    def same_as(self, other: DbState) -> bool:
        return self.digests == other.digests


def _stable_meta(meta: str) -> str:
    """The adapter's meta without its timings (wall-clock seconds differ run to run)."""
    data = json.loads(meta)
    data.pop("seconds", None)
    for info in data.get("domains", {}).values():
        info.pop("seconds", None)
    return json.dumps(data, sort_keys=True)


def db_state(path: Path) -> DbState:
    """Opened after a kill, so SQLite recovers the WAL first; integrity must be ok."""
    conn = sqlite3.connect(path, timeout=60)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        items = conn.execute("SELECT * FROM items ORDER BY id").fetchall()
        events = conn.execute("SELECT * FROM events ORDER BY id").fetchall()
        vector_rows = conn.execute(
            "SELECT kind, owner, model, dim, content_hash, vector FROM vectors "
            "ORDER BY kind, owner, model"
        ).fetchall()
        adapter_rows = conn.execute(
            "SELECT model, name, meta, payload FROM adapters ORDER BY model, name"
        ).fetchall()
    finally:
        conn.close()
    vectors = {(r[0], r[1], r[2]): (r[3], r[4], bytes(r[5])) for r in vector_rows}
    adapters = {(r[0], r[1]): (_stable_meta(r[2]), bytes(r[3])) for r in adapter_rows}

    def digest(rows: Any) -> str:
        return hashlib.sha256(repr(rows).encode()).hexdigest()

    return DbState(
        counts={
            "items": len(items),
            "events": len(events),
            "vectors": len(vectors),
            "adapters": len(adapters),
        },
        digests={
            "items": digest(items),
            "events": digest(events),
            "vectors": digest(sorted(vectors.items())),
            "adapters": digest(sorted(adapters.items())),
        },
        vectors=vectors,
        adapters=adapters,
    )


def checkpointed_copy(src: Path, dst: Path) -> Path:
    """A copy of a closed database, WAL folded in, with no -wal or -shm beside it."""
    conn = sqlite3.connect(src)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    remove_db(dst)
    shutil.copy(src, dst)
    return dst


# -- data ---------------------------------------------------------------------------------


def item_rows(start: int, n: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [
        {
            "id": f"i{k:06d}",
            "domain": DOMAINS[k % 3],
            "title": f"item {k} " + " ".join(rng.choice(WORDS) for _ in range(4)),
            "brand": f"brand {k % 97}",
        }
        for k in range(start, start + n)
    ]


def event_rows(n: int, n_items: int, users: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [
        {
            "user": f"u{rng.randrange(users):05d}",
            "item": f"i{rng.randrange(n_items):06d}",
            "action": rng.choice(("purchase", "view", "rate")),
            "value": rng.randint(1, 5),
            "time": 1_700_000_000 + k,
        }
        for k in range(n)
    ]


def tune_catalogue() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Two domains x 60 items and ~400 users with 3-5 events: enough for `tune` to train."""
    return catalogue_items(), catalogue_events()


# == 1. crash safety ======================================================================


@dataclass
class KillStats:
    """Where the kills landed, for the closing figures."""

    command: str
    reference_seconds: float
    first_write: float
    outcomes: Counter[str]

    @property
    def kills(self) -> int:
        return sum(self.outcomes.values()) - self.outcomes["exited before the kill"]

    def line(self) -> str:
        parts = "; ".join(f"{k}: {v}" for k, v in sorted(self.outcomes.items()))
        return (
            f"kill {self.command}: {self.kills} kill points (unkilled run "
            f"{self.reference_seconds:.1f} s, first write at {self.first_write:.1f} s) - {parts}"
        )


Classifier = Callable[[DbState, DbState, DbState], str]


def wal_size(db: Path) -> int:
    wal = Path(f"{db}-wal")
    return wal.stat().st_size if wal.exists() else 0


def timed_reference_run(args: list[str], home: Path) -> tuple[float, float]:
    """Run to the end, watching the WAL: (seconds until the first page is written, seconds)."""
    db = Path(args[args.index("--db") + 1])
    start = time.monotonic()
    proc = spawn(args, home, CPUS[0])
    first_write: float | None = None
    while proc.poll() is None:
        if first_write is None and wal_size(db) > 32:  # more than the WAL header
            first_write = time.monotonic() - start
        time.sleep(0.005)
    _, err = proc.communicate()
    assert proc.returncode == 0, err[-3000:]
    seconds = time.monotonic() - start
    return (first_write if first_write is not None else seconds), seconds


def kill_and_rerun(
    command: str,
    before: Path,
    args: list[str],
    home: Path,
    work: Path,
    classify: Classifier,
    *,
    rerun_when: Callable[[str], bool],
    seed_offset: int,
) -> KillStats:
    """Kill `localrec ARGS` KILLS times, check the state after each kill, rerun when a user
    would, and compare with a run that was never killed.

    Two unkilled reference runs from the same starting database must end in the same state
    (the command is deterministic); the faster one sets the time scale. random.Random(0)
    draws the delays: every other kill comes anywhere in the run (after 10 % of the
    reference's time), the others 0-250 ms after the killed run's first page reaches the
    WAL (a spill inside the transaction, or its commit), so that kills land inside
    transactions and around commits whatever the machine's speed, not only in Python's
    start-up. A process that exits before its kill is not a kill point: another delay is
    drawn, up to 3 * KILLS runs.
    """
    start_state = db_state(before)
    timings = []
    references = []
    for n in range(2):
        reference_db = checkpointed_copy(before, work / f"reference-{n}.db")
        timings.append(timed_reference_run(localrec(reference_db, *args), home))
        references.append(db_state(reference_db))
    reference = references[0]
    assert references[1] == reference, f"two unkilled runs of {command} differ"
    assert not reference.same_as(start_state), f"{command} changed nothing"
    first_write = min(t[0] for t in timings)
    seconds = min(t[1] for t in timings)
    rng = random.Random(0)
    for _ in range(seed_offset):  # each command its own stretch of the one seeded stream
        rng.random()
    outcomes: Counter[str] = Counter()
    for n in range(3 * KILLS):
        if sum(outcomes.values()) - outcomes["exited before the kill"] == KILLS:
            break
        db = checkpointed_copy(before, work / "killed.db")
        if n % 2:  # a random point of the run
            delay = rng.uniform(0.1 * seconds, seconds)
            proc = spawn(localrec(db, *args), home, CPUS[n % len(CPUS)])
        else:  # a random point shortly after the first page reaches the WAL
            delay = rng.uniform(0.0, 0.25)
            proc = spawn(localrec(db, *args), home, CPUS[n % len(CPUS)])
            while proc.poll() is None and wal_size(db) <= 32:
                time.sleep(0.002)
        try:
            proc.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)  # a no-op if it exited a moment ago
        _, err = proc.communicate(timeout=120)
        assert proc.returncode in (0, -signal.SIGKILL), (proc.returncode, err[-2000:])
        if proc.returncode == 0:
            outcome = "exited before the kill"
        else:
            wrote = wal_size(db) > 32  # read before SQLite opens (and recovers) the file
            outcome = classify(start_state, db_state(db), reference)  # integrity_check inside
            if outcome == "killed before the commit":
                outcome += " (uncommitted pages in the WAL)" if wrote else " (WAL empty)"
        outcomes[outcome] += 1
        if rerun_when(outcome):
            run_ok(localrec(db, *args), home, CPUS[n % len(CPUS)])
        final = db_state(db)
        assert final.counts == reference.counts, (command, delay, outcome, final.counts)
        assert final.digests == reference.digests, (command, delay, outcome)
        assert final.vectors == reference.vectors  # every BLOB bit for bit
        assert final.adapters == reference.adapters  # payload bytes and meta
    stats = KillStats(command, seconds, first_write, outcomes)
    print("\n" + stats.line())
    assert stats.kills >= KILLS, stats.line()
    return stats


def atomic(before: DbState, after: DbState, reference: DbState) -> str:
    """One transaction: all of it or none of it, nothing in between."""
    if after.same_as(before):
        return "killed before the commit"
    if after.same_as(reference):
        return "killed after the commit"
    raise AssertionError(f"a partial state after a kill: {after.counts} (want {reference.counts})")


def chunked(before: DbState, after: DbState, reference: DbState) -> str:
    """`encode` commits chunk by chunk: whole chunks of exactly the reference's vectors."""
    if after.same_as(reference):
        return "killed after the last chunk"
    assert after.digests["items"] == reference.digests["items"]
    assert after.digests["events"] == reference.digests["events"]
    assert after.adapters == reference.adapters
    for key, value in after.vectors.items():
        assert reference.vectors[key] == value, f"vector {key} differs from the unkilled run"
    stored = len(after.vectors) - len(before.vectors)
    assert stored % ENCODE_CHUNK == 0, f"{stored} vectors: not whole chunks of {ENCODE_CHUNK}"
    return "killed before the commit" if stored == 0 else "killed between chunks"


ENCODE_CHUNK = 32


def test_sigkill_add_items(soak_home: Path, tmp_path: Path) -> None:
    """Items are upserted in one transaction: after a kill either the old catalogue or the
    new one; rerunning (always safe: same ids, same rows) gives the unkilled result."""
    before = tmp_path / "before.db"
    old = write_jsonl(tmp_path / "old.jsonl", item_rows(0, 5000, seed=1))
    run_ok(localrec(before, "add", "items", str(old)), soak_home)
    # 5,000 of the old items change and 15,000 are new.
    new = write_jsonl(tmp_path / "items.jsonl", item_rows(0, 20_000, seed=2))
    kill_and_rerun(
        "add items",
        before,
        ["add", "items", str(new)],
        soak_home,
        tmp_path,
        atomic,
        rerun_when=lambda outcome: True,
        seed_offset=0,
    )


def test_sigkill_add_events(soak_home: Path, tmp_path: Path) -> None:
    """Events append, so a rerun after a kill that came AFTER the commit would store them
    twice. What a user does, and what this test does: look whether the file's events are
    there (`localrec stats` shows the count) and rerun only when they are not."""
    before = tmp_path / "before.db"
    items = write_jsonl(tmp_path / "items.jsonl", item_rows(0, 2000, seed=1))
    run_ok(localrec(before, "add", "items", str(items)), soak_home)
    old = write_jsonl(tmp_path / "old.jsonl", event_rows(1000, 2000, 500, seed=3))
    run_ok(localrec(before, "add", "events", str(old)), soak_home)
    events = write_jsonl(tmp_path / "events.jsonl", event_rows(30_000, 2000, 3000, seed=4))
    kill_and_rerun(
        "add events",
        before,
        ["add", "events", str(events)],
        soak_home,
        tmp_path,
        atomic,
        rerun_when=lambda outcome: outcome.startswith("killed before the commit"),
        seed_offset=3 * KILLS,
    )


def test_sigkill_encode(soak_home: Path, tmp_path: Path) -> None:
    """A killed encode keeps the chunks it committed; the rerun encodes the rest, in the
    same chunks as an unkilled run, so every vector is bit for bit the unkilled one."""
    before = tmp_path / "before.db"
    items = write_jsonl(tmp_path / "items.jsonl", item_rows(0, 480, seed=5))
    run_ok(localrec(before, "add", "items", str(items)), soak_home)
    kill_and_rerun(
        "encode",
        before,
        ["encode", "--chunk-size", str(ENCODE_CHUNK)],
        soak_home,
        tmp_path,
        chunked,
        rerun_when=lambda outcome: True,
        seed_offset=6 * KILLS,
    )


def test_sigkill_tune(soak_home: Path, tmp_path: Path) -> None:
    """`tune` writes its adapter in one transaction at the end; with a seed it is
    deterministic, so the adapter after kill + rerun equals an unkilled run's."""
    before = tmp_path / "before.db"
    items, events = tune_catalogue()
    run_ok(
        localrec(before, "add", "items", str(write_jsonl(tmp_path / "i.jsonl", items))), soak_home
    )
    run_ok(
        localrec(before, "add", "events", str(write_jsonl(tmp_path / "e.jsonl", events))),
        soak_home,
    )
    run_ok(localrec(before, "encode"), soak_home)
    kill_and_rerun(
        "tune",
        before,
        ["tune", "--seed", "5"],
        soak_home,
        tmp_path,
        atomic,
        rerun_when=lambda outcome: True,
        seed_offset=9 * KILLS,
    )


# == 2. concurrency =======================================================================

EVENT_WRITER = r"""
import json, random, sys, time, traceback
from pathlib import Path
from localrec.store.db import Store
from localrec.store.ingest import add_events_file
db, deadline, work, n_items = sys.argv[1], float(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4])
rng = random.Random(11)
stats = {"role": "events", "writes": 0, "events": 0, "errors": []}
start = time.time()
with Store(db) as store:
    while time.time() < deadline:
        rows = [
            {"user": f"s{rng.randrange(300):04d}", "item": f"i{rng.randrange(n_items):06d}",
             "action": rng.choice(["purchase", "view", "rate"]), "value": rng.randint(1, 5)}
            for _ in range(rng.randint(1, 40))
        ]
        path = work / f"events-{stats['writes']}.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        try:
            report = add_events_file(store, path)
            stats["writes"] += 1
            stats["events"] += report.stored
        except Exception as exc:
            stats["errors"].append(f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}")
        path.unlink()
stats["seconds"] = time.time() - start
print(json.dumps(stats))
"""

ENCODE_WRITER = r"""
import json, random, sys, time, traceback
from localrec.store.db import Store
from localrec.store.item_vectors import encode_items
from localrec.embedding.loader import open_encoder
from localrec.store.ingest import add_items
db, deadline, first = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
rng = random.Random(12)
words = ["red", "blue", "tea", "pan", "song", "jazz", "novel", "steel", "oak", "silk"]
stats = {"role": "encode", "writes": 0, "items": 0, "encoded": 0, "errors": []}
start = time.time()
with Store(db) as store, open_encoder(n_threads=1) as encoder:
    k = first
    while time.time() < deadline:
        rows = [
            {"id": f"n{k + j:06d}", "domain": ["books", "kitchen", "music"][(k + j) % 3],
             "title": "new " + " ".join(rng.choice(words) for _ in range(5))}
            for j in range(5)
        ]
        try:
            stats["items"] += add_items(store, rows).stored
            stats["writes"] += 1
            k += 5
            report = encode_items(store, encoder, chunk_size=4)
            stats["encoded"] += report.encoded
            stats["writes"] += report.chunks
        except Exception as exc:
            stats["errors"].append(f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}")
stats["seconds"] = time.time() - start
print(json.dumps(stats))
"""

READER = r"""
import json, random, sys, time, traceback
from localrec.recommend.recommender import Recommender
db, deadline, seed = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
rng = random.Random(seed)
stats = {"role": "reader", "reads": 0, "snapshots": 0, "fallbacks": 0, "errors": []}
last_events = 0
start = time.time()
with Recommender(db, user_vector="item-mean") as rec:
    store = rec.store
    users = sorted(store.user_sequences())
    while time.time() < deadline:
        try:
            user = rng.choice(users)
            domain = rng.choice(["books", "kitchen", "music"])
            result = rec.recommend(user, domain=domain, k=10)
            ids = [r.item_id for r in result.items]
            scores = [r.score for r in result.items]
            assert len(ids) == len(set(ids)), f"duplicate items {ids}"
            assert scores == sorted(scores, reverse=True), f"unsorted scores {scores}"
            found = store.get_items(ids)
            assert set(found) == set(ids), f"unknown items {set(ids) - set(found)}"
            assert all(found[i].domain == domain for i in ids)
            stats["fallbacks"] += result.fallback is not None
            stats["reads"] += 1
            with store.snapshot() as conn:
                q = lambda sql: conn.execute(sql).fetchone()[0]
                items = q("SELECT count(*) FROM items")
                events = q("SELECT count(*) FROM events")
                vectors = q("SELECT count(*) FROM vectors WHERE kind = 'item'")
                orphans = q(
                    "SELECT count(*) FROM vectors v WHERE kind = 'item' AND NOT EXISTS "
                    "(SELECT 1 FROM items i WHERE i.id = v.owner)"
                )
                dangling = q(
                    "SELECT count(*) FROM events e WHERE NOT EXISTS "
                    "(SELECT 1 FROM items i WHERE i.id = e.item_id)"
                )
                # The same snapshot answers the same counts, whatever commits meanwhile.
                assert (items, events) == (
                    q("SELECT count(*) FROM items"), q("SELECT count(*) FROM events")
                ), "counts changed inside one snapshot"
            assert orphans == 0 and dangling == 0, (orphans, dangling)
            assert vectors <= items, (vectors, items)
            assert events >= last_events, f"events went from {last_events} to {events}"
            last_events = events
            stats["snapshots"] += 1
        except Exception as exc:
            stats["errors"].append(f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}")
stats["seconds"] = time.time() - start
print(json.dumps(stats))
"""


def test_two_writers_and_four_readers(soak_home: Path, tmp_path: Path) -> None:
    db = tmp_path / "shared.db"
    n_items = 600
    items = write_jsonl(tmp_path / "items.jsonl", item_rows(0, n_items, seed=7))
    events = write_jsonl(tmp_path / "events.jsonl", event_rows(3000, n_items, 300, seed=8))
    run_ok(localrec(db, "add", "items", str(items)), soak_home)
    run_ok(localrec(db, "add", "events", str(events)), soak_home)
    run_ok(localrec(db, "encode"), soak_home)
    start_events = db_state(db).counts["events"]
    work = tmp_path / "event-files"
    work.mkdir()

    deadline = time.time() + 5 + SOAK_SECONDS  # 5 s for every process to start
    script = [sys.executable, "-c"]
    procs = [
        spawn(
            [*script, EVENT_WRITER, str(db), str(deadline), str(work), str(n_items)],
            soak_home,
            CPUS[0],
        ),
        spawn([*script, ENCODE_WRITER, str(db), str(deadline), "0"], soak_home, CPUS[-1]),
    ] + [
        spawn([*script, READER, str(db), str(deadline), str(s)], soak_home, CPUS[s % len(CPUS)])
        for s in range(4)
    ]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=SOAK_SECONDS + 600)
        assert proc.returncode == 0, err[-3000:]
        assert "database is locked" not in err
        results.append(json.loads(out.strip().splitlines()[-1]))

    errors = [e for r in results for e in r["errors"]]
    assert not [e for e in errors if "locked" in e], errors[:3]
    assert errors == [], errors[:3]
    writer, encoder = results[0], results[1]
    readers = results[2:]
    reads = sum(r["reads"] for r in readers)
    seconds = max(r["seconds"] for r in results)
    writes = writer["writes"] + encoder["writes"]
    print(
        f"\nsoak {SOAK_SECONDS:.0f} s, 2 writers + 4 readers on one database: "
        f"{reads / seconds:.1f} reads/s ({reads} recommend calls, "
        f"{sum(r['snapshots'] for r in readers)} snapshot checks), "
        f"{writes / seconds:.1f} writes/s ({writer['writes']} event files with "
        f"{writer['events']} events; {encoder['items']} new items encoded in "
        f"{encoder['writes']} transactions), 0 errors, 0 'database is locked'"
    )
    assert reads > 0 and writer["writes"] > 0 and encoder["encoded"] > 0
    # Nothing lost: every event and item that a writer was told is stored, is there.
    final = db_state(db)
    assert final.counts["events"] == start_events + writer["events"]
    assert final.counts["items"] == n_items + encoder["items"]
    conn = sqlite3.connect(db)
    encoded = conn.execute(
        "SELECT count(*) FROM vectors WHERE kind = 'item' AND owner LIKE 'n%'"
    ).fetchone()[0]
    conn.close()
    assert encoded == encoder["encoded"] <= encoder["items"]
