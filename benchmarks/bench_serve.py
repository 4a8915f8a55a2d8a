"""`localrec serve` on loopback against the in-process `Recommender.recommend`, in one run.

    LOCALREC_HOME=/tmp/lrhome .venv/bin/python benchmarks/bench_serve.py PACK \\
        [--users 50] [--requests 400] [--clients 8] [--work DIR] \\
        [--workers 1 2] [--client httpx stdlib]

PACK is the Food-Kitchen pack: `localrec tune DATASET_DIR` then `localrec pack build
DATASET_DIR --out PACK`, with the default model on disk. The device's private database
(in --work, fresh each run) gets the first --users test users' histories (their last item
held out), recorded through the server's /v1/events.

The server runs as its own process (`python -m localrec serve --port 0 --workers N`, once
per --workers value); each client is a process of its own too, with one keep-alive
connection, so no client waits on another's interpreter. Two kinds of client: httpx (what
the tests use) and the standard library's http.client, which costs a third of httpx's CPU
per request, closer to a native app's client; on a 2-core machine the clients' CPU is
taken from the server's. Every figure is over --requests requests after a warm-up, cycling over the
users: `recommend USER --domain kitchen -k 10` (the tuned hybrid from the pack), and an
ad-hoc text history (embedded by the model on each call).

1. serial: one caller, one request at a time: p50 and p99, HTTP against in-process;
2. concurrent: --clients callers at once (HTTP: processes; in-process: threads sharing
   one Recommender): p50 and p99 over all their requests;
3. `GET /v1/health`, one caller: what HTTP, uvicorn and FastAPI cost around any call.

With 8 clients the server's requests queue for its interpreter (and the machine's 2
cores): a closed loop of N clients waits about N times the server's CPU time per
request (divided by the cores the workers can use), so the script also prints that time,
summed over the server's processes from /proc over the serial HTTP run (Linux only), and
the clients' own CPU time per request.

It prints the load average before and after: on a machine shared with other CPU-heavy
jobs every figure grows, the in-process baseline too.

Goals (the serve issue): HTTP p50 <= 15 ms serial, p99 <= 50 ms with 8 clients. It says
which (workers, client) runs meet both; exits 1 when none does.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scripts.food_kitchen import food_kitchen_dir

REPO = Path(__file__).resolve().parent.parent
TEXT = "bought organic green tea; rated a dark chocolate bar 5/5; viewed: espresso beans"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def summary(seconds: list[float]) -> tuple[float, float]:
    """p50 and p99 in milliseconds."""
    return statistics.median(seconds) * 1000, percentile(seconds, 99) * 1000


def test_histories(dataset: Path, users: int) -> dict[str, list[str]]:
    histories = {}
    with open(dataset / "test.txt", encoding="utf-8") as fh:
        for n, line in enumerate(fh, start=1):
            if n > users:
                break
            items = [x for x in line.rstrip("\n").split("\t")[1].split(",") if x]
            histories[f"test-{n}"] = items[:-1]
    return histories


def start_server(pack: Path, db: Path, workers: int = 1) -> tuple[subprocess.Popen[str], str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(REPO)
    args = ["serve", "--pack", str(pack), "--db", str(db), "--port", "0"]
    args += ["--workers", str(workers)]
    process = subprocess.Popen(
        [sys.executable, "-m", "localrec", *args],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    first = process.stderr.readline()
    if not first.startswith("localrec serve: "):
        raise SystemExit(f"the server did not start: {first}{process.stderr.read()}")
    threading.Thread(target=process.stderr.read, daemon=True).start()  # keep draining
    return process, first.split()[2].rstrip("/")


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time so far of the process and its children (the workers), None
    where /proc has no such files."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return None
    own = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return own + sum(cpu_seconds(int(child)) or 0.0 for child in children)


def bodies(users: list[str]) -> list[dict[str, Any]]:
    return [{"user": u, "domain": "kitchen", "k": 10} for u in users]


class StdlibClient:
    """One keep-alive connection through the standard library's http.client: a client
    lighter than httpx, as a native app's would be (Electron's fetch, URLSession)."""

    def __init__(self, url: str) -> None:
        import http.client
        from urllib.parse import urlsplit

        where = urlsplit(url)
        self.conn = http.client.HTTPConnection(where.hostname or "", where.port, timeout=60)

    def post(self, path: str, body: dict[str, Any]) -> None:
        self.conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
        answer = self.conn.getresponse()
        answer.read()
        if answer.status != 200:
            raise RuntimeError(f"{path}: {answer.status}")


class HttpxClient:
    def __init__(self, url: str) -> None:
        import httpx

        self.client = httpx.Client(base_url=url, timeout=60)

    def post(self, path: str, body: dict[str, Any]) -> None:
        self.client.post(path, json=body).raise_for_status()


CLIENTS: dict[str, type[HttpxClient | StdlibClient]] = {
    "httpx": HttpxClient,
    "stdlib": StdlibClient,
}


def client_run(
    kind: str, url: str, requests: list[dict[str, Any]], start_at: float
) -> tuple[list[float], float]:
    """One client process: its requests one after another, each timed; and the client's
    own CPU seconds over them."""
    client = CLIENTS[kind](url)
    for body in requests[:5]:
        client.post("/v1/recommend", body)  # warm the connection
    time.sleep(max(0.0, start_at - time.time()))
    times = []
    cpu = time.process_time()
    for body in requests:
        began = time.perf_counter()
        client.post("/v1/recommend", body)
        times.append(time.perf_counter() - began)
    return times, time.process_time() - cpu


def http_clients(
    kind: str, url: str, requests: list[dict[str, Any]], clients: int
) -> tuple[list[float], float]:
    """Every request's time, and the clients' CPU seconds per request."""
    context = multiprocessing.get_context("spawn")
    start_at = time.time() + 3.0  # every client started and warm by then
    with context.Pool(clients) as pool:
        shares = [requests[c::clients] for c in range(clients)]
        results = pool.starmap(client_run, [(kind, url, s, start_at) for s in shares])
    return [t for r, _ in results for t in r], sum(c for _, c in results) / len(requests)


def in_process(
    call: Callable[[dict[str, Any]], object], requests: list[dict[str, Any]], threads: int
) -> list[float]:
    times: list[float] = []
    lock = threading.Lock()

    def work(share: list[dict[str, Any]]) -> None:
        mine = []
        for body in share:
            began = time.perf_counter()
            call(body)
            mine.append(time.perf_counter() - began)
        with lock:
            times.extend(mine)

    for body in requests[:10]:
        call(body)  # warm-up
    workers = [threading.Thread(target=work, args=(requests[t::threads],)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("pack", type=Path)
    parser.add_argument("--dataset", type=Path, default=food_kitchen_dir(REPO))
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--work", type=Path)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--client", nargs="+", choices=sorted(CLIENTS), default=["httpx", "stdlib"])
    args = parser.parse_args()

    import httpx

    from localrec.paths import home_dir
    from localrec.recommend.recommender import Recommender

    work = args.work or Path(tempfile.mkdtemp(prefix="bench-serve-"))
    work.mkdir(parents=True, exist_ok=True)
    db = work / "me.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    histories = test_histories(args.dataset, args.users)
    load_before = os.getloadavg()[0]
    process, url = start_server(args.pack, db)
    try:
        token = (home_dir() / "serve" / "token").read_text().strip()
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}) as client:
            for user, items in histories.items():
                events = [
                    {"user": user, "item": item, "time": 1_600_000_000 + j}
                    for j, item in enumerate(items)
                ]
                client.post("/v1/events", json={"events": events}).raise_for_status()
    finally:
        process.terminate()
        process.wait(60)
    users = list(histories)
    stored = bodies([users[i % len(users)] for i in range(args.requests)])
    text = [{"history": TEXT, "domain": "kitchen", "k": 10}] * (args.requests // 4)
    figures: dict[str, tuple[float, float]] = {}
    with Recommender(db, pack=args.pack) as rec:
        rec.encoder  # noqa: B018 - loaded before timing, as the server loads it at start

        def call(body: dict[str, Any]) -> object:
            return rec.recommend(
                body.get("user"), history=body.get("history"), domain="kitchen", k=10
            )

        figures["in-process, serial"] = summary(in_process(call, stored, 1))
        figures["in-process, text history"] = summary(in_process(call, text, 1))
        figures[f"in-process, {args.clients} threads"] = summary(
            in_process(call, stored, args.clients)
        )
    runs = []  # (workers, client, serial p50, concurrent p99)
    cpu: dict[str, float] = {}
    try:
        for workers in args.workers:
            process, url = start_server(args.pack, db, workers)
            try:
                for kind in args.client:
                    at = f"HTTP, {workers}w {kind}"
                    before = cpu_seconds(process.pid)
                    serial, client_cpu = http_clients(kind, url, stored, 1)
                    after = cpu_seconds(process.pid)
                    figures[f"{at}, serial"] = summary(serial)
                    if before is not None and after is not None:
                        # Over the serial run's requests and its client's 5 warm-up requests.
                        cpu[f"{at}: server"] = (after - before) / (len(stored) + 5) * 1000
                    cpu[f"{at}: client"] = client_cpu * 1000
                    figures[f"{at}, text history"] = summary(http_clients(kind, url, text, 1)[0])
                    many = summary(http_clients(kind, url, stored, args.clients)[0])
                    figures[f"{at}, {args.clients} clients"] = many
                    runs.append((workers, kind, figures[f"{at}, serial"][0], many[1]))
                with httpx.Client(base_url=url) as client:
                    health = []
                    for n in range(args.requests + 10):
                        began = time.perf_counter()
                        client.get("/v1/health").raise_for_status()
                        if n >= 10:
                            health.append(time.perf_counter() - began)
                figures[f"HTTP, {workers}w, GET /v1/health"] = summary(health)
            finally:
                process.terminate()
                process.wait(60)
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)

    print(f"{args.pack.name}: {len(histories)} users, {args.requests} requests per figure")
    print(f"load average (1 min): {load_before:.1f} before, {os.getloadavg()[0]:.1f} after")
    print(f"{'':<36} {'p50 ms':>8} {'p99 ms':>8}")
    for name, (p50, p99) in figures.items():
        print(f"{name:<36} {p50:>8.2f} {p99:>8.2f}")
    for name, ms in cpu.items():
        print(f"CPU per serial request, {name}: {ms:.2f} ms")
    base = figures["in-process, serial"][0]
    met = []
    for workers, kind, p50, p99 in runs:
        ok = p50 <= 15 and p99 <= 50
        met += [ok]
        print(
            f"--workers {workers}, {kind} clients: serial p50 {p50:.2f} ms ({p50 / base:.2f}x "
            f"in-process), {args.clients}-client p99 {p99:.2f} ms: "
            + ("goals met" if ok else "missed")
        )
        print(
            json.dumps(
                {
                    "workers": workers,
                    "client": kind,
                    "http_p50_ms": round(p50, 2),
                    f"http_p99_{args.clients}_ms": round(p99, 2),
                }
            )
        )
    return 0 if any(met) else 1


if __name__ == "__main__":
    sys.exit(main())
