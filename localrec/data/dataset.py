"""A directory of item texts plus user sequences (the LLMCDSR / C2DSR layout), loaded as arrays.

Layout: `items.jsonl` (one object per item: `item_id`, `domain`, `title`, optional
`attributes`), `test.txt`, and optionally `valid.txt`, `train_overlap.txt`, `train_A.txt`,
`train_B.txt`. A sequence line is `<user_index>\\t<item_id>,<item_id>,...`, oldest first;
the last item of a valid/test line is the target.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from localrec.data.sampling import UserSample, check_sample_size, sample_rows
from localrec.errors import DatasetError

__all__ = [
    "ITEMS_FILE",
    "TEST_FILE",
    "TRAIN_FILES",
    "VALID_FILE",
    "SequenceDataset",
    "load_dataset",
]

ITEMS_FILE = "items.jsonl"
# The order matters: `SequenceDataset.train` concatenates them in this order.
TRAIN_FILES = ("train_overlap.txt", "train_A.txt", "train_B.txt")
VALID_FILE = "valid.txt"
TEST_FILE = "test.txt"

IntArray = npt.NDArray[np.int64]
_INT64_MIN = int(np.iinfo(np.int64).min)
_INT64_MAX = int(np.iinfo(np.int64).max)
Sequences = list[npt.NDArray[np.int32]]


@dataclass(frozen=True, eq=False)
class SequenceDataset:
    """Items indexed densely 0..n-1 and every split's sequences as arrays of those indices."""

    root: Path
    item_ids: IntArray
    domains: npt.NDArray[np.int8]
    domain_names: tuple[str, ...]
    titles: list[str]
    attributes: list[str]
    train: Sequences
    valid: Sequences
    test: Sequences
    # Which of TRAIN_FILES were present, so reports can say what the baselines saw.
    train_files: tuple[str, ...] = ()
    # Set when `train` is a sample of the training users (`load_dataset(sample_users=...)`).
    sample: UserSample | None = None
    _domain_items: tuple[IntArray, ...] = field(init=False, repr=False)
    _domain_pos: IntArray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        # Computed once: the protocol asks for a domain's items for every case.
        order = np.argsort(self.domains, kind="stable").astype(np.int64)
        counts = np.bincount(self.domains, minlength=len(self.domain_names))
        groups = tuple(np.split(order, np.cumsum(counts)[:-1]))
        pos = np.empty(self.n_items, dtype=np.int64)
        for group in groups:
            pos[group] = np.arange(len(group))
        object.__setattr__(self, "_domain_items", groups)
        object.__setattr__(self, "_domain_pos", pos)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @property
    def n_domains(self) -> int:
        return len(self.domain_names)

    def items_of_domain(self, domain: int) -> IntArray:
        """Indices of the items of `domain`, ascending. Do not modify the returned array."""
        if not 0 <= domain < self.n_domains:
            raise DatasetError(
                f"{self.root}: no domain {domain}; domains are 0..{self.n_domains - 1} "
                f"({', '.join(self.domain_names)})"
            )
        return self._domain_items[domain]

    def domain_position(self, items: npt.ArrayLike) -> IntArray:
        """Position of each item inside `items_of_domain(its domain)`."""
        return self._domain_pos[np.asarray(items, dtype=np.int64)]

    def domain_index(self, name: str) -> int:
        try:
            return self.domain_names.index(name)
        except ValueError:
            raise DatasetError(
                f"{self.root}: no domain {name!r}; it has {', '.join(self.domain_names)}"
            ) from None

    def item_text(self, item: int) -> str:
        """Title plus attributes: the text every text-based method sees."""
        attrs = self.attributes[item]
        return f"{self.titles[item]}. {attrs}" if attrs else self.titles[item]

    def item_texts(self) -> list[str]:
        return [self.item_text(i) for i in range(self.n_items)]


def load_dataset(
    path: str | Path, sample_users: int | None = None, seed: int = 0
) -> SequenceDataset:
    """Read a dataset directory; every problem is a DatasetError naming the file and line.

    With `sample_users`, `train` is a seeded uniform sample of that many training users
    (lines of the training files, in file order), and only those lines are parsed: the
    others are counted, not held. Lines left out are not checked either.
    """
    if sample_users is not None:
        check_sample_size(sample_users)
    root = Path(path).expanduser()
    if not root.is_dir():
        raise DatasetError(f"{root}: not a directory; pass the dataset directory")
    items_path = root / ITEMS_FILE
    test_path = root / TEST_FILE
    for required in (items_path, test_path):
        if not required.is_file():
            raise DatasetError(
                f"{required}: missing; a dataset directory needs {ITEMS_FILE} and {TEST_FILE}"
            )
    item_ids, domains, domain_names, titles, attributes = _read_items(items_path)
    lookup = _IdLookup(item_ids)
    train: Sequences = []
    present = [name for name in TRAIN_FILES if (root / name).is_file()]
    keep: dict[str, frozenset[int] | None] = dict.fromkeys(present)
    sample = None
    if sample_users is not None:
        sizes = [_count_records(root / name) for name in present]
        rows = sample_rows(sum(sizes), sample_users, seed, f"{root}")
        starts = np.cumsum([0, *sizes])
        for n, name in enumerate(present):
            mine = rows[(rows >= starts[n]) & (rows < starts[n + 1])] - starts[n]
            keep[name] = frozenset(mine.tolist())
        sample = UserSample(sample_users, int(starts[-1]), seed)
    for name in present:
        train.extend(_read_sequences(root / name, lookup, keep[name]))
    valid = _read_sequences(root / VALID_FILE, lookup) if (root / VALID_FILE).is_file() else []
    test = _read_sequences(test_path, lookup)
    if not test:
        raise DatasetError(f"{test_path}: no sequences; it needs one user per line")
    return SequenceDataset(
        root=root,
        item_ids=item_ids,
        domains=domains,
        domain_names=domain_names,
        titles=titles,
        attributes=attributes,
        train=train,
        valid=valid,
        test=test,
        train_files=tuple(present),
        sample=sample,
    )


def _clean(text: str) -> str:
    # Titles carry HTML entities (&amp;) and stray tabs/newlines from scraping.
    return " ".join(html.unescape(text).split())


def _attribute_text(value: Any, where: str) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return _clean(value)
    if isinstance(value, list):
        return "; ".join(_clean(str(v)) for v in value if v is not None and str(v).strip())
    if isinstance(value, dict):
        return "; ".join(
            f"{_clean(str(k))}: {_clean(str(v))}" for k, v in value.items() if v is not None
        )
    raise DatasetError(
        f"{where}: 'attributes' is a {type(value).__name__}; use a string, list or object"
    )


def _read_items(
    path: Path,
) -> tuple[IntArray, npt.NDArray[np.int8], tuple[str, ...], list[str], list[str]]:
    ids: list[int] = []
    domain_codes: list[int] = []
    names: dict[str, int] = {}
    titles: list[str] = []
    attributes: list[str] = []
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DatasetError(
                    f"{where}: not valid JSON ({exc.msg}); fix or remove the line"
                ) from None
            if not isinstance(obj, dict):
                raise DatasetError(f"{where}: expected a JSON object, got {type(obj).__name__}")
            item_id = obj.get("item_id")
            # bool is an int subclass; `true` as an id is certainly a mistake.
            if not isinstance(item_id, int) or isinstance(item_id, bool):
                raise DatasetError(f"{where}: 'item_id' must be an integer, got {item_id!r}")
            domain = obj.get("domain")
            if not isinstance(domain, str) or not domain:
                raise DatasetError(f"{where}: 'domain' must be a non-empty string, got {domain!r}")
            title = obj.get("title")
            if not isinstance(title, str):
                raise DatasetError(f"{where}: 'title' must be a string, got {title!r}")
            ids.append(item_id)
            domain_codes.append(names.setdefault(domain, len(names)))
            titles.append(_clean(title))
            attributes.append(_attribute_text(obj.get("attributes"), where))
    if not ids:
        raise DatasetError(f"{path}: no items; it needs one JSON object per line")
    if len(names) > np.iinfo(np.int8).max:
        raise DatasetError(f"{path}: {len(names)} domains; at most 127 are supported")
    item_ids = np.asarray(ids, dtype=np.int64)
    uniq, counts = np.unique(item_ids, return_counts=True)
    if len(uniq) < len(item_ids):
        dup = int(uniq[counts > 1][0])
        lines = [n + 1 for n, i in enumerate(ids) if i == dup][:2]
        raise DatasetError(
            f"{path}: item_id {dup} appears more than once (entries {lines[0]} and {lines[1]},"
            " counting non-blank lines); item ids must be unique"
        )
    return item_ids, np.asarray(domain_codes, dtype=np.int8), tuple(names), titles, attributes


class _IdLookup:
    """Original item id -> dense index, vectorised (ids need not be dense or sorted)."""

    def __init__(self, item_ids: IntArray) -> None:
        self._order = np.argsort(item_ids, kind="stable")
        self._sorted = item_ids[self._order]

    def __call__(self, raw: IntArray) -> tuple[IntArray, npt.NDArray[np.bool_]]:
        pos = np.searchsorted(self._sorted, raw)
        pos = np.minimum(pos, len(self._sorted) - 1)
        known = self._sorted[pos] == raw
        return self._order[pos], known


def _count_records(path: Path) -> int:
    """The non-blank lines of a sequence file (one user each)."""
    with path.open(encoding="utf-8") as f:
        return sum(1 for line in f if line.strip())


def _read_sequences(path: Path, lookup: _IdLookup, keep: frozenset[int] | None = None) -> Sequences:
    """The file's sequences; with `keep`, only those of the non-blank lines (0-based) in it."""
    linenos: list[int] = []
    lengths: list[int] = []
    tokens: list[str] = []
    record = -1
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            text = line.strip()
            if not text:
                continue
            record += 1
            if keep is not None and record not in keep:
                continue
            user, sep, seq = text.partition("\t")
            if not sep or not user.strip() or not seq.strip():
                raise DatasetError(
                    f"{path}:{lineno}: expected '<user_index><TAB><item_id>,<item_id>,...', "
                    f"got {_preview(text)}"
                )
            parts = seq.split(",")
            linenos.append(lineno)
            lengths.append(len(parts))
            tokens.extend(parts)
    if not tokens:
        return []
    raw = _parse_ints(tokens, path, linenos, lengths)
    index, known = lookup(raw)
    if not known.all():
        bad = int(np.flatnonzero(~known)[0])
        bad_line = linenos[_line_of(bad, lengths)]
        raise DatasetError(
            f"{path}:{bad_line}: item id {int(raw[bad])} is not in {ITEMS_FILE}; "
            "add the item or remove it from the sequence"
        )
    return list(np.split(index.astype(np.int32), np.cumsum(lengths)[:-1]))


def _parse_ints(tokens: list[str], path: Path, linenos: list[int], lengths: list[int]) -> IntArray:
    try:
        # One C-level conversion for the whole file: ~10x faster than int() per token.
        return np.asarray(tokens, dtype=np.int64)
    except (ValueError, OverflowError):
        pass
    for n, tok in enumerate(tokens):
        try:
            value = int(tok)
        except ValueError:
            value = None
        if value is None or not _INT64_MIN <= value <= _INT64_MAX:
            line = linenos[_line_of(n, lengths)]
            raise DatasetError(
                f"{path}:{line}: item id {tok!r} is not a 64-bit integer; "
                "ids are comma-separated integers with no empty entries"
            )
    raise AssertionError("unreachable: numpy rejected tokens that int() accepts")


def _line_of(token: int, lengths: Iterable[int]) -> int:
    """Which record (0-based) holds the token at flat position `token`."""
    return int(np.searchsorted(np.cumsum(list(lengths)), token, side="right"))


def _preview(text: str, limit: int = 60) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")
