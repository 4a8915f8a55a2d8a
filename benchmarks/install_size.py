"""What `pip install localrec` pulls in, and how much disk it takes, with and without extras.

    python benchmarks/install_size.py [--extras "" test test,docs] [--find-links DIR]

For each set of extras it makes a fresh throwaway venv (with the interpreter that runs this
script) in a temporary directory, installs this checkout into it (`pip install .[EXTRAS]`,
not editable, so the wheel's own files are counted), and prints the distributions installed
and the size on disk: the whole venv, its site-packages, and what the install added to a
fresh venv's site-packages (pip alone). Sizes are the files' apparent bytes (as `du -sb`),
in MB of 10^6 bytes; the largest packages (site-packages' top-level directories) are listed.

llama-cpp-python ships only as source, so each install would compile llama.cpp (~10 minutes
on 2 cores). pip's cache usually holds the wheel built the first time; --find-links points
pip at the directory of such a wheel (by default the newest llama_cpp_python wheel in pip's
cache, if any), so nothing is compiled. Everything else comes from the package index (or
pip's cache).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def tree_bytes(path: Path) -> int:
    """The apparent size of every file under `path` (symlinks not followed), as `du -sb`."""
    total = 0
    for root, dirs, files in os.walk(path):
        for name in files + dirs:
            total += os.lstat(os.path.join(root, name)).st_size
    return total


def site_packages(venv: Path) -> Path:
    return next((venv / "lib").glob("python3*/site-packages"))


def cached_llama_wheel_dir() -> Path | None:
    """The directory of the newest llama_cpp_python wheel in pip's cache, if there is one."""
    out = subprocess.run(
        [sys.executable, "-m", "pip", "cache", "dir"], capture_output=True, text=True, check=False
    ).stdout.strip()
    if not out:
        return None
    wheels = sorted(Path(out).rglob("llama_cpp_python-*.whl"), key=lambda p: p.stat().st_mtime)
    return wheels[-1].parent if wheels else None


def measure(extras: str, find_links: Path | None, work: Path) -> dict[str, object]:
    venv = work / f"venv-{extras.replace(',', '-') or 'core'}"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    empty = tree_bytes(site_packages(venv))
    target = f"{REPO}[{extras}]" if extras else str(REPO)
    command = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    if find_links is not None:
        command += ["--find-links", str(find_links)]
    subprocess.run([*command, target], check=True)
    listed = subprocess.run(
        [str(python), "-m", "pip", "list", "--format", "json", "--disable-pip-version-check"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    packages = sorted(f"{p['name']}=={p['version']}" for p in json.loads(listed))
    site = site_packages(venv)
    largest = sorted(
        ((tree_bytes(p) if p.is_dir() else p.stat().st_size, p.name) for p in site.iterdir()),
        reverse=True,
    )[:8]
    return {
        "extras": extras or "(none)",
        "distributions": packages,
        "venv_mb": tree_bytes(venv) / 1e6,
        "site_packages_mb": tree_bytes(site) / 1e6,
        "added_mb": (tree_bytes(site) - empty) / 1e6,
        "largest": [(name, size / 1e6) for size, name in largest],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--extras", nargs="*", default=["", "test", "test,docs"])
    parser.add_argument("--find-links", type=Path, default=None)
    args = parser.parse_args()
    find_links = args.find_links or cached_llama_wheel_dir()
    print(f"python {sys.version.split()[0]}; llama-cpp-python wheel from: {find_links}")
    with tempfile.TemporaryDirectory(prefix="localrec-install-size-") as tmp:
        results = [measure(extras, find_links, Path(tmp)) for extras in args.extras]
    for r in results:
        print(f"\npip install .[{r['extras']}]" if r["extras"] != "(none)" else "\npip install .")
        print(
            f"  venv {r['venv_mb']:.1f} MB; site-packages {r['site_packages_mb']:.1f} MB, "
            f"of which the install added {r['added_mb']:.1f} MB"
        )
        distributions = r["distributions"]
        assert isinstance(distributions, list)
        print(f"  {len(distributions)} distributions: {', '.join(distributions)}")
        largest = r["largest"]
        assert isinstance(largest, list)
        print("  largest: " + ", ".join(f"{name} {size:.1f} MB" for name, size in largest))


if __name__ == "__main__":
    main()
