"""An opened pack is shared by a server's threads: its adapter is decoded once, by the
first thread that asks, while the others wait for it; the item rows it keeps are the
ones its file holds."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import localrec.packs.pack as pack_module
from localrec.packs.format import write_pack
from localrec.packs.pack import open_pack
from tests.packs.files import ROWS, content, write

THREADS = 8


@pytest.mark.parametrize("with_adapter", [True, False])
def test_threads_asking_at_once_get_the_one_adapter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, with_adapter: bool
) -> None:
    parts: dict[str, Any] = content()
    if with_adapter:
        parts["meta"] = {**parts["meta"], "adapter": {"settings": "stored"}}
    path = tmp_path / "p.lrpack"
    write_pack(path, **parts)
    decoded: list[bytes] = []

    def slow_decode(meta: dict[str, Any], payload: bytes) -> object:
        assert payload == parts["adapter"], "a thread decoded a payload already emptied"
        decoded.append(payload)
        time.sleep(0.05)  # long enough for every other thread to arrive meanwhile
        return object()

    monkeypatch.setattr(pack_module, "adapter_from_stored", slow_decode)
    got: list[object] = []
    failed: list[BaseException] = []
    start = threading.Barrier(THREADS)
    with open_pack(path) as pack:

        def ask() -> None:
            start.wait()
            try:
                got.append(pack.adapter)
            except BaseException as error:  # reported below
                failed.append(error)

        threads = [threading.Thread(target=ask) for _ in range(THREADS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert failed == []
        assert len(got) == THREADS
        assert len(decoded) == (1 if with_adapter else 0)
        assert all(a is got[0] for a in got)
        assert (got[0] is not None) is with_adapter
        assert pack.adapter is got[0]  # and later askers get it too


def test_item_rows_kept_are_the_ones_read_from_threads_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path / "p.lrpack")
    monkeypatch.setattr(pack_module, "KEPT_ITEM_ROWS", 50)  # let go of them now and then
    with open_pack(path) as reference:
        want = reference.get_items([f"item-{r}" for r in range(ROWS)])
    rng = np.random.default_rng(0)
    asks = [[f"item-{r}" for r in rng.integers(0, ROWS + 20, size=12)] for _ in range(400)]
    failed: list[str] = []
    start = threading.Barrier(THREADS)
    with open_pack(path) as pack:

        def ask(share: list[list[str]]) -> None:
            start.wait()
            for ids in share:
                got = pack.get_items(ids)
                known = {i for i in ids if i in want}  # item-300 and up are not in it
                if got != {i: want[i] for i in known}:
                    failed.append(f"{ids}: {sorted(got)}")

        threads = [threading.Thread(target=ask, args=(asks[t::THREADS],)) for t in range(THREADS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert failed == []
        assert 0 < len(pack._rows) <= 50 + 12
