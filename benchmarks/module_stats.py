"""The package's shape: modules, lines, the largest modules and import cycles.

    python benchmarks/module_stats.py [CHECKOUT]    # default: this repository

Reads every .py file under CHECKOUT/localrec with `ast` (nothing is imported), takes each
`from localrec... import` and `import localrec...` as an edge (a `from pkg import module`
is an edge to that module), and reports the strongly connected groups of that graph:
every group of two or more modules is an import cycle. Works on the flat layout of
earlier versions too, so the same command compares a checkout before and after.
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path, name: str, names: set[str]) -> set[str]:
    """The localrec modules `path` imports (relative imports resolved)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            base = package.split(".")
            if node.level:
                base = base[: len(base) - node.level + 1]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            subs = {f"{target}.{a.name}" for a in node.names} & names
            out |= subs
            if len(subs) < len(node.names) and target in names:
                out.add(target)
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name in names}
    out.discard(name)
    return out


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of two or more modules (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    sys.setrecursionlimit(10_000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("checkout", nargs="?", type=Path, default=REPO)
    args = parser.parse_args()
    root: Path = args.checkout.resolve()
    files = sorted((root / "localrec").rglob("*.py"))
    if not files:
        raise SystemExit(f"{root}: no localrec/ package here")
    names = {module_name(p, root): p for p in files}
    lines = {n: len(p.read_text(encoding="utf-8").splitlines()) for n, p in names.items()}
    graph = {n: imports(p, n, set(names)) for n, p in names.items()}
    largest = sorted(lines.items(), key=lambda kv: -kv[1])
    print(f"modules (.py files): {len(files)}")
    print(f"lines: {sum(lines.values())}")
    print("largest: " + ", ".join(f"{n} {size}" for n, size in largest[:3]))
    print(f"over 500 lines: {[n for n, size in largest if size > 500]}")
    found = cycles(graph)
    print(f"import cycles: {len(found)}" + "".join(f"\n  {' <-> '.join(c)}" for c in found))


if __name__ == "__main__":
    main()
