"""Every answer that is not a success: one JSON shape, a 4xx naming the field for anything a
caller got wrong, and never a traceback.

    {"error": "k: Input should be less than or equal to 100", "field": "k",
     "errors": [{"field": "k", "error": "..."}]}

`errors` lists every field at fault (a request may have several); `field` and `error` are
the first. `field` is null when no one field is at fault (a missing token, a full disk).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from localrec.errors import EncoderError, InputError, LocalrecError, RowRejected
from localrec.serve.schemas import FIELD_NAMES

__all__ = ["ApiError", "blame", "error_response", "install_handlers"]

log = logging.getLogger("localrec.serve")


class ApiError(Exception):
    """A request the server answers with `status` and a message naming `field`."""

    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field


def error_response(
    status: int,
    message: str,
    field: str | None = None,
    *,
    errors: Sequence[dict[str, Any]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body = {
        "error": message,
        "field": field,
        "errors": list(errors) if errors else [{"field": field, "error": message}],
    }
    return JSONResponse(body, status_code=status, headers=headers)


@contextmanager
def blame(field: str) -> Iterator[None]:
    """A library error about what the caller gave becomes a 422 naming `field`."""
    try:
        yield
    except RowRejected as exc:
        # A record request's events are numbered from 1 as lines of a file would be.
        raise ApiError(422, exc.reason, f"{field}[{exc.line - 1}]") from None
    except (InputError, EncoderError) as exc:
        raise ApiError(422, str(exc), field) from None


def _field(loc: Sequence[int | str], unknown: bool = False) -> str:
    """("body", "events", 2, "item") -> "events[2].item"; the body itself -> "body".
    With `unknown`, the last part is a field the caller sent that no model has."""
    out = ""
    for i, part in enumerate(loc):
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in FIELD_NAMES or (unknown and i == len(loc) - 1):
            # not "body", nor the branch of a union pydantic tried (such as "float")
            out += f".{part}" if out else part
    return out or "body"


def _validation(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = []
    for error in exc.errors():
        field = _field(error.get("loc", ()), error.get("type") == "extra_forbidden")
        message = str(error.get("msg", "invalid"))
        if error.get("type") == "json_invalid":
            return error_response(400, f"the body is not valid JSON ({message})", "body")
        if error.get("type") == "missing" and field == "body":
            return error_response(400, "the body is missing; send a JSON object", "body")
        errors.append({"field": field, "error": f"{field}: {message}"})
    # A union reports each branch it tried ("history" is not a string, "history[1].action"
    # is not an action): keep the deepest field of each, and one message per field.
    fields = {e["field"] for e in errors}
    seen: dict[str, dict[str, Any]] = {}
    for e in errors:
        deeper = any(f.startswith((e["field"] + ".", e["field"] + "[")) for f in fields)
        if not deeper:
            seen.setdefault(e["field"], e)
    unique = list(seen.values())
    return error_response(422, unique[0]["error"], unique[0]["field"], errors=unique)


def _api(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.message, exc.field)


def _http(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    message = {404: "no such endpoint; see /openapi.json", 405: "method not allowed here"}.get(
        exc.status_code, str(exc.detail)
    )
    return error_response(exc.status_code, message, None, headers=exc.headers)


def _localrec(_: Request, exc: Exception) -> JSONResponse:
    """A library error not tied to one field (`blame` catches those that are): the input
    in general (422), or the server's own files (a database to encode, a model to pull)."""
    if isinstance(exc, InputError | EncoderError):
        return error_response(422, str(exc), None)
    return error_response(503, str(exc), None)


def _unexpected(_: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error", exc_info=exc)
    return error_response(
        500, f"internal error ({type(exc).__name__}); the server's log has the details", None
    )


def install_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(ApiError, _api)
    app.add_exception_handler(HTTPException, _http)
    app.add_exception_handler(LocalrecError, _localrec)
    app.add_exception_handler(Exception, _unexpected)
