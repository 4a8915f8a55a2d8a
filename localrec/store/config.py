"""The configuration a database may hold (`localrec config`), validated before it is stored.

("Setting" in localrec means the evaluation's mixed/cross setting; a database holds
configuration keys.)
"""

from __future__ import annotations

import re

from localrec.errors import InputError
from localrec.store.db import Store
from localrec.text import validate_template

__all__ = ["set_config"]

_KEY = re.compile(r"^template\.[^\s]{1,64}$")


def set_config(store: Store, key: str, value: str) -> None:
    """Store a configuration key; only `template.DOMAIN` keys with a valid template exist."""
    if not _KEY.match(key):
        raise InputError(f"unknown configuration key {key!r}; the keys are template.DOMAIN")
    validate_template(value)
    store.config_set(key, value)
