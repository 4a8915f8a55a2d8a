"""docs/img/playground.png: the playground in headless Chromium, serving a pack.

    LOCALREC_HOME=/tmp/lrhome .venv/bin/python scripts/playground_screenshot.py PACK \\
        [--out docs/img/playground.png]

A fresh private database gets the purchases of Food-Kitchen's first test user (their last
item held out); the page lists that user's kitchen items with their reasons, records a
purchase of the first one (the "bought it" button) and is photographed with the changed
list, its new items marked.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scripts.food_kitchen import food_kitchen_dir
from scripts.headless_chromium import Chromium, find_chromium

REPO = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("pack", type=Path)
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "img" / "playground.png")
    parser.add_argument("--dataset", type=Path, default=food_kitchen_dir(REPO))
    args = parser.parse_args()
    binary = find_chromium()
    if binary is None:
        raise SystemExit("Chromium is not installed (Debian: apt-get install chromium)")

    import httpx

    from localrec.serve.server import Server, ServeSettings

    first = (args.dataset / "test.txt").read_text(encoding="utf-8").splitlines()[0]
    history = first.split("\t")[1].split(",")[:-1]
    with tempfile.TemporaryDirectory() as work:
        server = Server(ServeSettings(db=Path(work) / "me.db", pack=args.pack, port=0))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)
        url = server.url.rstrip("/")
        events = [
            {"user": "me", "item": item, "time": 1_600_000_000 + j}
            for j, item in enumerate(history)
        ]
        headers = {"Authorization": f"Bearer {server.token}"}
        httpx.post(f"{url}/v1/events", json={"events": events}, headers=headers).raise_for_status()
        with Chromium(binary, timeout=60) as browser:
            address = f"{url}/?user=me&domain=kitchen&k=6#token={server.token}"
            page = browser.open(address, width=1100, height=1040)
            page.wait_for("document.body.dataset.state === 'listed'", timeout=60)
            page.evaluate("document.body.dataset.state = 'recording'")
            page.evaluate("document.querySelector('#results li button').click()")
            page.wait_for("document.body.dataset.state === 'listed'", timeout=60)
            page.evaluate("document.getElementById('token').value = ''")  # not in the picture
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_bytes(page.screenshot())
        server.stop()
        thread.join(60)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
