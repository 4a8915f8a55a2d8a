"""The public API: `localrec.__all__` is what the package exports, typed for mypy."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

import localrec
from localrec import errors

INIT = Path(localrec.__file__)


def _typed_imports() -> dict[str, str]:
    """Name -> module of the imports under `if TYPE_CHECKING:` in localrec/__init__.py."""
    tree = ast.parse(INIT.read_text(encoding="utf-8"))
    block = next(
        n for n in tree.body if isinstance(n, ast.If) and ast.unparse(n.test) == "TYPE_CHECKING"
    )
    return {
        alias.name: node.module.removeprefix("localrec.")
        for node in block.body
        if isinstance(node, ast.ImportFrom) and node.module
        for alias in node.names
    }


def test_all_is_exactly_the_exports() -> None:
    exports = localrec._EXPORTS
    assert sorted(localrec.__all__) == sorted([*exports, "__version__"])
    assert len(set(localrec.__all__)) == len(localrec.__all__)


def test_what_mypy_sees_is_what_runs() -> None:
    """The TYPE_CHECKING imports name the same module for every export as the lazy map."""
    assert _typed_imports() == localrec._EXPORTS


@pytest.mark.parametrize("name", sorted(localrec._EXPORTS))
def test_every_export_resolves_to_its_module(name: str) -> None:
    value = getattr(localrec, name)
    module = inspect.getmodule(value)
    assert module is not None and module.__name__ == f"localrec.{localrec._EXPORTS[name]}"


def test_every_error_class_is_exported() -> None:
    classes = {
        name
        for name, value in vars(errors).items()
        if inspect.isclass(value) and issubclass(value, errors.LocalrecError)
    }
    assert classes <= set(localrec.__all__)


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="has no attribute 'Nope'"):
        _ = localrec.Nope  # type: ignore[attr-defined]
