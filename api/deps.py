"""Typed dependencies for the routes, all handed out from the app's one :class:`~ecert.container.Container`.

Dependencies here are ``async``: they only pick a service out of the container, and a sync dependency would
cost a thread hop on every request.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Query, Request
from sqlmodel import Session

from ca.service import CertificateAuthority
from certificates.holders import PiiVault
from certificates.service import LicenceService
from ecert.container import Container, Verification
from ecert.runtime import Runtime
from identity.tokens import AccessTokens

__all__ = [
    "container_of", "get_container", "get_runtime", "get_session", "ContainerDep", "RuntimeDep", "SessionDep",
    "AuthorityDep", "LicencesDep", "TokensDep", "PiiDep", "VerificationDep", "Offset",
]


def container_of(request: Request) -> Container:
    """The app's container (for code outside dependency injection: middleware, page helpers)."""
    container: Container = request.app.state.container
    return container


async def get_container(request: Request) -> Container:
    return container_of(request)


async def get_runtime(request: Request) -> Runtime:
    return container_of(request).runtime


def get_session(runtime: Annotated[Runtime, Depends(get_runtime)]) -> Iterator[Session]:
    """One transaction per request: committed when the route returns, rolled back on error.

    Used with ``scope="function"``: the commit happens before the response is sent, so a client
    never gets a 201 for a write that then fails to commit, and its next request sees the write.
    Routes of the licence library do not use it for writes: :class:`LicenceService` owns its transactions.
    """
    with Session(runtime.engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


async def _authority(request: Request) -> CertificateAuthority:
    return container_of(request).ca


async def _licences(request: Request) -> LicenceService:
    return container_of(request).licences


async def _tokens(request: Request) -> AccessTokens:
    return container_of(request).tokens


async def _pii(request: Request) -> PiiVault:
    return container_of(request).pii


async def _verification(request: Request) -> Verification:
    return container_of(request).verification


ContainerDep = Annotated[Container, Depends(get_container)]
RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
AuthorityDep = Annotated[CertificateAuthority, Depends(_authority)]
LicencesDep = Annotated[LicenceService, Depends(_licences)]
TokensDep = Annotated[AccessTokens, Depends(_tokens)]
PiiDep = Annotated[PiiVault, Depends(_pii)]
VerificationDep = Annotated[Verification, Depends(_verification)]


# Paging offset: bounded so a client's huge number is a 422, not a database overflow (SQLite INTEGER is 64-bit)
Offset = Annotated[int, Query(ge=0, le=1_000_000_000, description="rows to skip")]
