"""The settings a database may hold, validated before they are stored."""

from __future__ import annotations

import re

from localrec.errors import InputError
from localrec.store.db import Store
from localrec.text import validate_template

__all__ = ["set_setting"]

_KEY = re.compile(r"^template\.[^\s]{1,64}$")


def set_setting(store: Store, key: str, value: str) -> None:
    """Store a setting; only `template.DOMAIN` keys with a valid template are accepted."""
    if not _KEY.match(key):
        raise InputError(f"unknown setting {key!r}; settings are template.DOMAIN")
    validate_template(value)
    store.config_set(key, value)
