"""Tables of the identity package: department API clients (OAuth2 client credentials)."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

__all__ = ["ApiClient"]

_TS = sa.DateTime(timezone=True)


class ApiClient(SQLModel, table=True):
    """A department system (or a platform administrator when ``department_code`` is None).

    ``client_id`` is public; the secret is never stored, only its keyed SHA-256 (see
    :func:`identity.clients.secret_hash`). ``scopes`` is space-separated, as in OAuth.
    """

    __tablename__ = "identity_api_client"

    client_id: str = Field(primary_key=True, max_length=64)
    name: str = Field(max_length=200)
    department_code: str | None = Field(default=None, max_length=32, index=True)
    scopes: str = Field(max_length=1000)
    secret_hash: str = Field(max_length=64)
    created_at: dt.datetime = Field(sa_type=_TS)
    created_by: str = Field(max_length=128)
    disabled_at: dt.datetime | None = Field(default=None, sa_type=_TS)
