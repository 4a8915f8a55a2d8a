"""Who may call the server.

- Bound to loopback (the default), anyone on this machine may read (recommend, score,
  similar, stats, health), and only a caller with the token may write (record, forget).
  The Host header must name this machine, so a web page that rebinds its own DNS name to
  127.0.0.1 cannot read the answers.
- Bound to any other address, every API request needs the token.

The token is `--token`, or one generated once and kept in `$LOCALREC_HOME/serve/token`
(mode 0600, its directory 0700), so that only this user can read it. Callers send it as
`Authorization: Bearer TOKEN`; it is compared in constant time.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import re
import secrets
import stat
from pathlib import Path

from localrec.errors import ServeError
from localrec.paths import home_dir

__all__ = [
    "bearer_matches",
    "check_token",
    "host_is_local",
    "is_loopback",
    "load_or_create_token",
    "settle_token",
    "token_path",
]

_TOKEN = re.compile(r"[A-Za-z0-9._~+/=-]{16,256}")
_LOCAL_NAMES = {"localhost", "127.0.0.1", "::1"}


def is_loopback(host: str) -> bool:
    """Whether binding to `host` keeps the server on this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def token_path() -> Path:
    return home_dir() / "serve" / "token"


def check_token(token: str) -> str:
    """A token given with --token: long enough to guess never, and safe in a header."""
    if not _TOKEN.fullmatch(token):
        raise ServeError(
            f"--token must be 16 to 256 characters of letters, digits and ._~+/=- "
            f"(got {len(token)} character(s)); or leave it out and one is generated in "
            f"{token_path()}"
        )
    return token


def load_or_create_token(path: Path | None = None) -> tuple[str, Path]:
    """The token kept at `path` (default `token_path()`), made now if there is none."""
    path = path or token_path()
    if path.exists():
        mode = path.stat().st_mode
        if os.name == "posix" and mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ServeError(
                f"{path} can be read by other users (mode {stat.S_IMODE(mode):o}); delete it "
                "(a new token is made) or `chmod 600` it"
            )
        token = path.read_text(encoding="utf-8").strip()
        if _TOKEN.fullmatch(token):
            return token, path
    path.parent.mkdir(parents=True, exist_ok=True)
    if os.name == "posix":
        path.parent.chmod(0o700)
    token = secrets.token_urlsafe(32)
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, token.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(partial, path)  # whole or not at all
    return token, path


def settle_token(given: str | None) -> tuple[str, Path | None]:
    """The token requests need: --token, checked (no file), or the one kept on disk."""
    if given is not None:
        return check_token(given), None
    return load_or_create_token()


def bearer_matches(header: str | None, token: str) -> bool:
    """Whether an Authorization header carries `token` (constant-time)."""
    if not header:
        return False
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode(), token.encode())


def host_is_local(header: str | None, bound: str) -> bool:
    """Whether a Host header names this machine (or the address the server is bound to)."""
    if not header:
        return False
    host = header.strip().lower()
    if host.startswith("["):
        host = host[1 : host.find("]")] if "]" in host else host
    else:
        host = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    return host in _LOCAL_NAMES or host == bound.lower()
