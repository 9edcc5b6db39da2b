"""Dependencies shared by the routes (FastAPI template style)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Query, Request
from sqlmodel import Session

from ecert.runtime import Runtime

__all__ = ["get_runtime", "get_session", "RuntimeDep", "SessionDep", "Offset"]


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def get_session(runtime: Annotated[Runtime, Depends(get_runtime)]) -> Iterator[Session]:
    """One transaction per request: committed when the route returns, rolled back on error.

    Used with ``scope="function"``: the commit happens before the response is sent, so a client
    never gets a 201 for a write that then fails to commit, and its next request sees the write.
    """
    with Session(runtime.engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
SessionDep = Annotated[Session, Depends(get_session, scope="function")]


# Paging offset: bounded so a client's huge number is a 422, not a database overflow (SQLite INTEGER is 64-bit)
Offset = Annotated[int, Query(ge=0, le=1_000_000_000, description="rows to skip")]
