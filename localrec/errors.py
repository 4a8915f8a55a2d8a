"""Every error localrec raises on purpose. The CLI turns each into a one-line message, exit 1."""

from __future__ import annotations

__all__ = [
    "DatabaseCorrupt",
    "DatabaseError",
    "DatabaseLocked",
    "DatabaseReadOnly",
    "DatasetError",
    "DiskFull",
    "EncoderError",
    "EngineError",
    "InputError",
    "LocalrecError",
    "ModelError",
    "ModelFileError",
    "ModelNotFound",
    "ModelNotPulled",
    "NetworkDisabled",
    "NotEncoded",
    "PackError",
    "RegistryError",
    "RowRejected",
    "SchemaError",
    "ServeError",
    "TrainingError",
    "UnknownModel",
]


class LocalrecError(Exception):
    """Base of every error localrec raises on purpose."""


class RegistryError(LocalrecError):
    """models.toml (or a user registry entry) is malformed."""


class ModelError(LocalrecError):
    """A model cannot be found, fetched or used."""


class UnknownModel(ModelError):
    """A model name that no registry knows."""


class ModelNotPulled(ModelError):
    """A registered model whose GGUF file is not on disk yet."""


class ModelNotFound(ModelError):
    """A model cannot be fetched from the hub or built offline."""


class ModelFileError(ModelError):
    """A GGUF file is corrupt, truncated, has the wrong hash or is not an embedding model."""


class NetworkDisabled(ModelError):
    """A download was needed while HF_HUB_OFFLINE forbids the network."""


class EncoderError(LocalrecError):
    """Text cannot be encoded (empty text, llama.cpp failure)."""


class InputError(LocalrecError):
    """A user-supplied file, row or value is invalid."""


class RowRejected(InputError):
    """One row of a source is invalid, so nothing from that source was stored."""

    def __init__(self, message: str, *, source: str, line: int, reason: str) -> None:
        super().__init__(message)
        self.source = source
        self.line = line
        self.reason = reason


class DatabaseError(LocalrecError):
    """The database cannot be opened or used as asked."""


class DatabaseReadOnly(DatabaseError):
    """The database file or its directory cannot be written by this process."""


class DiskFull(DatabaseError):
    """A write failed for lack of space: a full disk, a file-size limit or an I/O error."""


class DatabaseCorrupt(DatabaseError):
    """The database file is damaged (a malformed page): it refuses writes."""


class DatabaseLocked(DatabaseError):
    """Another process held the database's write lock for too long."""


class SchemaError(DatabaseError):
    """The database schema is newer than this localrec, or cannot be migrated."""


class NotEncoded(DatabaseError):
    """Vectors for the requested model are missing: `localrec encode` must run first."""


class DatasetError(LocalrecError):
    """A sequence dataset directory is missing files or is malformed."""


class TrainingError(LocalrecError):
    """An adapter cannot be trained (too little data, bad settings)."""


class EngineError(LocalrecError):
    """The distributed engine (Ray) is not installed, cannot be reached, or failed."""


class PackError(LocalrecError):
    """A pack file is missing, damaged, not a pack, or of a newer format than this localrec."""


class ServeError(LocalrecError):
    """The local HTTP server cannot start as asked (a missing extra, a port, a token)."""
