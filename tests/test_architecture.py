"""The import layers hold, and breaking them fails the check (import-linter's contracts)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint(tree: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(tree / "pyproject.toml"), "--no-cache"],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def _copy(tmp_path: Path) -> Path:
    tree = tmp_path / "tree"
    shutil.copytree(REPO / "localrec", tree / "localrec")
    shutil.copy(REPO / "pyproject.toml", tree / "pyproject.toml")
    return tree


def test_the_package_keeps_its_contracts() -> None:
    result = _lint(REPO)
    assert result.returncode == 0, result.stdout
    assert "2 kept, 0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "line", "broken"),
    [
        # scoring may not know about the Python API above it (which imports scoring: a
        # cycle between the packages too)
        ("scoring/select.py", "import localrec.recommend.recommender", ("Layers", "No import")),
        # the bottom layer imports nothing of ours, even where no cycle would arise
        ("errors.py", "import localrec.weighting", ("Layers",)),
        # no cycle inside a package: f16_twin already imports llama_encoder
        ("embedding/llama_encoder.py", "import localrec.embedding.f16_twin", ("No import",)),
    ],
)
def test_an_upward_import_or_a_cycle_breaks_the_check(
    tmp_path: Path, module: str, line: str, broken: tuple[str, ...]
) -> None:
    tree = _copy(tmp_path)
    path = tree / "localrec" / module
    before = path.read_text(encoding="utf-8") if path.exists() else ""
    path.write_text(before + f"\n{line}  # noqa\n", encoding="utf-8")
    result = _lint(tree)
    assert result.returncode != 0
    verdicts = [ln for ln in result.stdout.splitlines() if ln.endswith(("KEPT", "BROKEN"))]
    assert [v for v in verdicts if v.endswith("BROKEN")] == [
        v for v in verdicts if v.startswith(broken)
    ], verdicts
    assert len([v for v in verdicts if v.endswith("BROKEN")]) == len(broken)


def test_serving_never_imports_what_only_evaluation_needs() -> None:
    # scikit-learn and matplotlib are the [eval] extra's: the CLI, the Python API and the
    # server must import without them (a lean install has neither).
    code = (
        "import sys\n"
        "sys.modules['sklearn'] = None\n"
        "sys.modules['matplotlib'] = None\n"
        "import localrec, localrec.cli, localrec.recommend, localrec.packs, localrec.serve\n"
        "print('imported')\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip() == "imported"
