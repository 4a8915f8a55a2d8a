"""Every exit code of the `localrec` command, in one place (docs/cli.md lists them too).

A script can tell "it went wrong" (1, 2) from "it worked, but there is nothing to show"
(3, 4) without reading stderr.
"""

from __future__ import annotations

__all__ = ["ERROR", "EXIT_CODES", "NO_PERSONAL_LIST", "OK", "UNKNOWN_USER", "USAGE"]

OK = 0
# A LocalrecError (bad file, unknown domain, missing model, ...), said in one line on
# stderr; also click's "Aborted!" when a confirmation is declined.
ERROR = 1
# click's own code for a usage error: an unknown option, a missing argument, a bad value.
USAGE = 2
# `forget USER` of a user the database has no event or vector of: nothing was deleted.
UNKNOWN_USER = 3
# `recommend --no-fallback` for a user without usable history: no personal list, and no
# popular items instead (the notes on stderr, and in --json, say why).
NO_PERSONAL_LIST = 4

EXIT_CODES: dict[int, str] = {
    OK: "success",
    ERROR: "an error, said in one line on stderr (nothing stored is half-written)",
    USAGE: "a usage error: an unknown option, a missing argument or a bad value",
    UNKNOWN_USER: "forget: the database holds nothing of that user",
    NO_PERSONAL_LIST: "recommend --no-fallback: the user has no usable history",
}
