"""The public API: `localrec.__all__` is what the package exports, typed for mypy."""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path
from typing import Any

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


def _store(tmp_path: Path) -> localrec.Store:
    store = localrec.Store(tmp_path / "api.db")
    localrec.add_items(store, [{"id": "a", "domain": "d", "title": "x"}])
    return store


# The package untyped: these calls pass what the type hints forbid, on purpose.
api: Any = localrec
# A Python caller's wrong value is a LocalrecError that says what was expected, as the
# README promises, not a TypeError or AttributeError from deep inside.
WRONG_CALLS: list[tuple[str, Any, str]] = [
    ("Store(123)", lambda s, p: api.Store(123), "the database must be a path"),
    ("Store(None)", lambda s, p: api.Store(None), "the database must be a path"),
    ("Store(b'x')", lambda s, p: api.Store(b"x"), "the database must be a path"),
    ("Store(create)", lambda s, p: api.Store(p / "x.db", create="no"), "create must be"),
    ("add_items(None)", lambda s, p: api.add_items(None, []), "store must be a localrec"),
    ("add_items(5)", lambda s, p: api.add_items(s, 5), "records must be an iterable"),
    ("add_items(dict)", lambda s, p: api.add_items(s, {"id": "a"}), "records must be"),
    ("add_items(columns)", lambda s, p: api.add_items(s, [], 5), "columns must be a"),
    ("ItemColumns(text=str)", lambda s, p: api.ItemColumns(text="title"), "a tuple of"),
    ("ItemColumns(text=())", lambda s, p: api.ItemColumns(text=()), "a tuple of column"),
    ("ItemColumns(id=5)", lambda s, p: api.ItemColumns(id=5), "ItemColumns.id is a"),
    ("EventColumns(set_action)", lambda s, p: api.EventColumns(set_action=5), "is a name"),
    ("add_items(taken)", lambda s, p: api.add_items(s, [], taken=5), "a set of item ids"),
    ("add_events(known)", lambda s, p: api.add_events(s, [], known_items=5), "item ids"),
    ("encode_items(None)", lambda s, p: api.encode_items(None, None), "store must be"),
    ("encode_items(5)", lambda s, p: api.encode_items(s, 5), "the encoder must have"),
    ("open_pack(5)", lambda s, p: api.open_pack(5), "the pack must be a path"),
    ("Recommender(pack)", lambda s, p: api.Recommender(s.path, pack=5), "pack must be"),
    ("Recommender(lang)", lambda s, p: api.Recommender(s.path, lang=5), "unknown language"),
    ("Recommender(adapter)", lambda s, p: api.Recommender(s.path, adapter="no"), "adapter"),
    ("add_model(5)", lambda s, p: api.add_model(5), "the GGUF file must be a path"),
    ("list_models(5)", lambda s, p: api.list_models(5), "registry must be a localrec"),
    ("tune_database(5)", lambda s, p: api.tune_database(5), "store must be a localrec"),
    ("tune_dataset(5)", lambda s, p: api.tune_dataset(5), "the dataset directory must"),
    ("evaluate_database(5)", lambda s, p: api.evaluate_database(5), "store must be"),
    ("evaluate_dataset(5)", lambda s, p: api.evaluate_dataset(5), "the dataset directory"),
    ("build_pack(5)", lambda s, p: api.build_pack(5, store=s), "the pack to write must"),
    ("build_pack(store)", lambda s, p: api.build_pack(p / "x", store=5), "store must be"),
    ("delete_items(5)", lambda s, p: s.delete_items(5), "delete_items takes a list of item ids"),
    ("delete_items('a')", lambda s, p: s.delete_items("a"), "takes a list of item ids"),
    ("get_items([5])", lambda s, p: s.get_items([5]), "get_items: an item id is a string"),
    ("forget_user(5)", lambda s, p: s.forget_user(5), "a user id is a string"),
    ("user_events(5)", lambda s, p: s.user_events(5), "a user id is a string"),
    ("config_set(5)", lambda s, p: s.config_set(5, 5), "a configuration key and value are text"),
]


@pytest.mark.parametrize(
    ("call", "message"), [(c, m) for _, c, m in WRONG_CALLS], ids=[n for n, _, _ in WRONG_CALLS]
)
def test_a_wrong_value_from_python_is_a_localrec_error(
    tmp_path: Path, call: Any, message: str
) -> None:
    store = _store(tmp_path)
    try:
        with pytest.raises(errors.LocalrecError, match=re.escape(message)):
            call(store, tmp_path)
    finally:
        store.close()
