"""The FastAPI application: the routes under /v1, the OpenAPI schema at /openapi.json and
the playground page at /. Each route parses its body and calls one `Service` method.

Routes are plain functions, so a lone server runs them on its thread pool: requests
overlap while one waits on SQLite, numpy or the encoder (`Service` decides what may
overlap). A worker of `--workers N` (`inline`) instead runs its reads on its event loop,
one request after another: the other workers use the other cores, and the thread pool's
hand-offs and the threads' contention for the interpreter cost a worker 15-25% more CPU
per list (see docs/serve.md). Writes always go to the thread pool, as they may wait on
SQLite or VACUUM for a while.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from importlib.resources import files
from pathlib import Path
from typing import Any, TypeVar

from fastapi import FastAPI, Query
from fastapi.openapi.utils import get_openapi
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.middleware.cors import CORSMiddleware

from localrec.serve.guard import WRITE_PATHS, Guard, Policy
from localrec.serve.problems import install_handlers
from localrec.serve.schemas import (
    ForgetOut,
    ForgetRequest,
    HealthOut,
    ListOut,
    RecommendRequest,
    RecordOut,
    RecordRequest,
    ScoredOut,
    ScoreRequest,
    SimilarRequest,
    UsersOut,
)
from localrec.serve.service import Service

__all__ = ["OPENAPI_URL", "STATIC", "create_app"]

OPENAPI_URL = "/openapi.json"
STATIC = Path(str(files("localrec.serve") / "static"))
_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"description": what}
    for code, what in (
        (400, "The body is not JSON"),
        (401, "The token is missing or wrong"),
        (413, "The body is too large"),
        (415, "The body is not application/json"),
        (422, "A field is invalid: `field` names it"),
        (503, "The server's files cannot answer (a model to pull, items to encode)"),
    )
}


_Route = TypeVar("_Route", bound=Callable[..., Any])


def create_app(
    service: Service, policy: Policy, cors: tuple[str, ...] = (), *, inline: bool = False
) -> FastAPI:
    """The application over one opened `Service`; `policy` says who may call it, `cors`
    which web origins may read its answers (none unless given); `inline` runs the reads on
    the event loop rather than the thread pool (a worker of several)."""
    app = FastAPI(
        title="localrec",
        version=service.version,
        summary="Private, offline recommendations on this machine.",
        openapi_url=OPENAPI_URL,
        docs_url=None,  # the interactive pages load their scripts from a CDN
        redoc_url=None,
        responses=_ERRORS,
    )
    install_handlers(app)
    _routes(app, service, inline)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.openapi = lambda: _schema(app, policy)  # type: ignore[method-assign]
    app.add_middleware(Guard, policy=policy)
    if cors:
        # Outermost: a browser's preflight carries no token and is answered here.
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(cors),
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
            max_age=600,
        )
    return app


def _on_loop(route: _Route) -> _Route:
    """The same route, run on the event loop: FastAPI awaits a coroutine function where it
    would send a plain one to its thread pool (it reads the parameters through `wraps`)."""

    @functools.wraps(route)
    async def here(*args: Any, **kwargs: Any) -> Any:
        return route(*args, **kwargs)

    return here  # type: ignore[return-value]


def _routes(app: FastAPI, service: Service, inline: bool) -> None:

    def read(route: _Route) -> _Route:
        return _on_loop(route) if inline else route

    @app.get("/", include_in_schema=False)
    def playground() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    @app.get("/v1/health", response_model=HealthOut, tags=["server"])
    @read
    def health() -> dict[str, Any]:
        """The model, pack, database and domains being served."""
        return service.health()

    @app.get("/v1/stats", tags=["server"])
    @read
    def stats() -> dict[str, Any]:
        """What `localrec stats --json` prints."""
        return service.stats()

    @app.get("/v1/users", response_model=UsersOut, tags=["users"])
    @read
    def users(limit: int = Query(100, ge=1, le=1000)) -> dict[str, Any]:
        """Stored users with their number of events, the most recently active first."""
        return service.users(limit)

    @app.post("/v1/recommend", response_model=ListOut, tags=["recommendations"])
    @read
    def recommend(body: RecommendRequest) -> JSONResponse:
        """A list for a stored `user` or an ad-hoc `history` (`localrec recommend`)."""
        # The library's to_dict() is ListOut (tests/serve check it); validating it again
        # on every request was ~8% of a served list's time.
        return JSONResponse(service.recommend(body))

    @app.post("/v1/score", response_model=ScoredOut, tags=["recommendations"])
    @read
    def score(body: ScoreRequest) -> dict[str, Any]:
        """s(u, p) of the given items, in their order: cosines (`localrec score`)."""
        return service.score(body)

    @app.post("/v1/similar", response_model=ScoredOut, tags=["recommendations"])
    @read
    def similar(body: SimilarRequest) -> dict[str, Any]:
        """The items closest to one item (`localrec similar`)."""
        return service.similar(body)

    @app.post("/v1/events", response_model=RecordOut, tags=["users"])
    def record(body: RecordRequest) -> dict[str, Any]:
        """Store events, all or none (`localrec add events`). Needs the token."""
        return service.record(body)

    @app.post("/v1/forget", response_model=ForgetOut, tags=["users"])
    def forget(body: ForgetRequest) -> dict[str, Any]:
        """Delete a user's events and vectors, then VACUUM (`localrec forget`). Needs the
        token."""
        return service.forget(body)


def _schema(app: FastAPI, policy: Policy) -> dict[str, Any]:
    """The OpenAPI schema, saying which operations need the bearer token."""
    if app.openapi_schema is None:
        schema = get_openapi(
            title=app.title,
            version=app.version,
            summary=app.summary,
            routes=app.routes,
            description=(
                "Writes always need `Authorization: Bearer TOKEN`; "
                + ("reads need none on loopback." if policy.loopback else "so does every read.")
            ),
        )
        schema.setdefault("components", {})["securitySchemes"] = {
            "bearer": {"type": "http", "scheme": "bearer"}
        }
        for path, operations in schema["paths"].items():
            if path in WRITE_PATHS or not policy.loopback:
                for operation in operations.values():
                    operation["security"] = [{"bearer": []}]
        app.openapi_schema = schema
    return app.openapi_schema
