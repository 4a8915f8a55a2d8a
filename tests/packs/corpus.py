"""A database whose people are easy to find in bytes, tuned with the real default model, and
the packs built from it: what the privacy and CLI tests of packs share.

Every user id starts with USER_MARK, every review holds REVIEW_MARK, and every event time is
an unusual float, so a scan of a pack's bytes can tell whether any of them got in. Two pairs
are made on purpose on items the rest of the events never touch: SOLO_PAIR by one user,
DUO_PAIR by two.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import link_models
from tests.helpers import catalogue_events, catalogue_items

USER_MARK = "user-zq81-"
REVIEW_MARK = "my secret review about pans"
SOLO_USER = f"{USER_MARK}solo"
DUO_USERS = (f"{USER_MARK}duo-a", f"{USER_MARK}duo-b")


def event_time(u: int, j: int) -> float:
    """An event time no pack could hold by chance: a fraction in every one."""
    return 1_612_345_678.0 + 97.123457 * u + 3.251 * j + 0.000917


def corpus_events() -> tuple[list[dict[str, Any]], tuple[str, str], tuple[str, str]]:
    """The events, SOLO_PAIR and DUO_PAIR (each (a, b): a bought before b)."""
    events = []
    for e in catalogue_events():
        u, j = int(e["user"][1:]), int(e["time"]) % 1000
        events.append(
            {
                **e,
                "user": f"{USER_MARK}{u}",
                "time": event_time(u, j),
                "review": f"{REVIEW_MARK}, number {u}-{j}",
            }
        )
    touched = {e["item"] for e in events}
    free = [i["id"] for i in catalogue_items() if i["id"] not in touched]
    solo, duo = (free[0], free[1]), (free[2], free[3])
    extra = [(SOLO_USER, solo), (DUO_USERS[0], duo), (DUO_USERS[1], duo)]
    for u, (user, pair) in enumerate(extra, start=900):
        for j, item in enumerate(pair):
            events.append(
                {
                    "user": user,
                    "item": item,
                    "action": "purchase",
                    "time": event_time(u, j),
                    "review": f"{REVIEW_MARK}, from {user}",
                }
            )
    return events, solo, duo


SOLO_PAIR: tuple[str, str]
DUO_PAIR: tuple[str, str]
_, SOLO_PAIR, DUO_PAIR = corpus_events()


_BUILT: dict[Path, Path] = {}


def tuned_corpus(factory: pytest.TempPathFactory, pulled_home: Path) -> Path:
    """The database, items encoded and the adapter tuned with the real default model: built
    once per test session, under a LOCALREC_HOME of its own. Tests copy it before use."""
    session = factory.getbasetemp()
    if session not in _BUILT:
        _BUILT[session] = _tune_corpus(factory, pulled_home)
    return _BUILT[session]


def _tune_corpus(factory: pytest.TempPathFactory, pulled_home: Path) -> Path:
    from localrec.embedding.llama_encoder import LlamaEncoder
    from localrec.models.registry import load_registry
    from localrec.scoring.adapter import AdapterConfig
    from localrec.store.db import Store
    from localrec.store.ingest import add_events, add_items
    from localrec.store.item_vectors import encode_items
    from localrec.tuning.run import tune_database

    root = factory.mktemp("pack-corpus")
    home = link_models(pulled_home, root / "home")
    db = root / "corpus.db"
    saved = os.environ.get("LOCALREC_HOME")
    os.environ["LOCALREC_HOME"] = str(home)
    try:
        spec = load_registry(include_user=False).get("all-minilm-l6-v2")
        with Store(db) as store:
            add_items(store, catalogue_items())
            add_events(store, corpus_events()[0])
            with LlamaEncoder(home / "models" / f"{spec.name}.gguf", spec) as encoder:
                encode_items(store, encoder)
            config = AdapterConfig(
                dim=16, epochs=3, negatives=50, batch_size=128, learning_rate=0.02, min_pairs=10
            )
            tune_database(store, config=config)
    finally:
        if saved is None:
            os.environ.pop("LOCALREC_HOME", None)
        else:
            os.environ["LOCALREC_HOME"] = saved
    return db


def event_times(db: Path) -> list[float]:
    conn = sqlite3.connect(db)
    try:
        return [float(r[0]) for r in conn.execute("SELECT ts FROM events")]
    finally:
        conn.close()


def vendor_and_pack(
    factory: pytest.TempPathFactory, pulled_home: Path, where: Path, min_users: int = 2
) -> tuple[Path, Path]:
    """A vendor's database (a copy of the tuned corpus, at `where`/vendor.db) and the pack
    built from it (`where`/shop.lrpack). Needs the model in LOCALREC_HOME (`model_home`): a
    pack records its GGUF's sha256."""
    from localrec.packs.build import build_pack
    from localrec.store.db import Store

    db = where / "vendor.db"
    shutil.copy(tuned_corpus(factory, pulled_home), db)
    out = where / "shop.lrpack"
    with Store(db) as store:
        build_pack(out, store=store, min_users=min_users)
    return db, out
