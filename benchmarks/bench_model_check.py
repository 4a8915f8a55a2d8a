"""What checking the default model's sha256 costs at process start-up.

    LOCALREC_HOME=... .venv/bin/python benchmarks/bench_model_check.py [--runs 15]

Medians of `resolve_model` plus `runtime_path` (the GGUF and its F16 twin, each checked
against its recorded sha256): with the check remembered (the file's size, mtime and inode
unchanged since the last check), and with the record removed before each run, so that
both files are hashed. The goal is under 100 ms for the default model.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from localrec.embedding.f16_twin import runtime_path
from localrec.models.cache import resolve_model
from localrec.models.verify import verified_path


def median_ms(fn: Callable[[], object], runs: int) -> float:
    fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def main(runs: int) -> int:
    spec, path = resolve_model(None)
    twin = runtime_path(path, spec)
    files = [path] if twin == path else [path, twin]

    def check() -> None:
        resolve_model(None)
        runtime_path(path, spec)

    def unremembered() -> None:
        for file in files:
            verified_path(file).unlink(missing_ok=True)
        check()

    remembered, hashed = median_ms(check, runs), median_ms(unremembered, runs)
    sizes = " + ".join(f"{f.stat().st_size / 1e6:.1f} MB" for f in files)
    print(
        f"model check at start-up: {remembered:.2f} ms remembered, {hashed:.1f} ms hashing {sizes}"
    )
    print(f"goal < 100 ms: {'met' if max(remembered, hashed) < 100 else 'MISSED'}")
    return 0 if max(remembered, hashed) < 100 else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=15)
    sys.exit(main(parser.parse_args().runs))
