"""A local Ray cluster for the Ray engine's tests, and the one exception they make to
`no_network`: connections to loopback (Ray's driver talks to its own processes over it).

Every other address stays refused, in-process (this module's patches) and, for Ray's
C++ parts and the processes it starts, by what `ray_engine` sets up (checked with strace
in test_ray_engine.py).
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

import pytest

from tests.conftest import NetworkBlocked

_CONNECT = socket.socket.connect
_CONNECT_EX = socket.socket.connect_ex
_CREATE_CONNECTION = socket.create_connection
_GETADDRINFO = socket.getaddrinfo


def is_loopback(host: Any) -> bool:
    if host in ("localhost", b"localhost"):
        return True
    try:
        return ipaddress.ip_address(host.decode() if isinstance(host, bytes) else host).is_loopback
    except (TypeError, ValueError):
        return False


def _check(address: Any) -> None:
    if isinstance(address, str | bytes):  # AF_UNIX: a path on this machine
        return
    if not (isinstance(address, tuple) and address and is_loopback(address[0])):
        raise NetworkBlocked(f"a test tried to open a network connection: {address!r}")


def _connect(self: socket.socket, address: Any) -> Any:
    _check(address)
    return _CONNECT(self, address)


def _connect_ex(self: socket.socket, address: Any) -> Any:
    _check(address)
    return _CONNECT_EX(self, address)


def _create_connection(address: Any, *args: Any, **kwargs: Any) -> Any:
    _check(address)
    return _CREATE_CONNECTION(address, *args, **kwargs)


def _getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
    if host is not None and not is_loopback(host):
        raise NetworkBlocked(f"a test tried to look up {host!r}")
    return _GETADDRINFO(host, *args, **kwargs)


def allow_loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Sockets may connect to loopback (and AF_UNIX paths), nowhere else."""
    monkeypatch.setattr(socket.socket, "connect", _connect)
    monkeypatch.setattr(socket.socket, "connect_ex", _connect_ex)
    monkeypatch.setattr(socket, "create_connection", _create_connection)
    monkeypatch.setattr(socket, "getaddrinfo", _getaddrinfo)
