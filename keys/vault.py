"""A connection to Vault/OpenBao: authentication, re-login, and error translation.

This is the only module that talks HTTP to Vault (through ``hvac``). Every failure comes out
as one of the errors in :mod:`keys.errors`, so callers never see ``hvac`` or ``requests``.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

import hvac
import hvac.exceptions as hvac_errors
import requests

from keys.errors import KeyNotFound, KeyOperationDenied, KeyStoreError, VaultAuthError, VaultUnavailable

__all__ = ["VaultCredentials", "VaultConnection", "VaultHealth"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VaultCredentials:
    """Either a token or an AppRole (role_id + secret_id). ``repr`` never shows secrets."""

    token: str | None = None
    role_id: str | None = None
    secret_id: str | None = None
    approle_mount: str = "approle"

    def __post_init__(self) -> None:
        if not self.token and not (self.role_id and self.secret_id):
            raise ValueError("Vault credentials need a token or an AppRole role_id and secret_id")

    def __repr__(self) -> str:
        kind = "token" if self.token else f"approle(role_id={self.role_id})"
        return f"VaultCredentials({kind})"


@dataclass(frozen=True)
class VaultHealth:
    reachable: bool
    initialized: bool
    sealed: bool
    active: bool
    version: str | None = None

    @property
    def ready(self) -> bool:
        return self.reachable and self.initialized and not self.sealed and self.active


class VaultConnection:
    """Authenticated access to one Vault server, safe to share between threads.

    Each thread gets its own ``hvac.Client`` (their HTTP sessions are not shared); the
    token is shared and renewed by logging in again when Vault reports it expired.
    """

    def __init__(self, addr: str, credentials: VaultCredentials, *, timeout: float = 10.0) -> None:
        self.addr = addr.rstrip("/")
        self._credentials = credentials
        self._timeout = timeout
        self._token: str | None = credentials.token
        self._login_lock = threading.Lock()
        self._local = threading.local()

    def __repr__(self) -> str:
        return f"VaultConnection({self.addr!r}, {self._credentials!r})"

    # -- plumbing -----------------------------------------------------------------------
    def _client(self) -> hvac.Client:
        client: hvac.Client | None = getattr(self._local, "client", None)
        if client is None:
            client = hvac.Client(url=self.addr, timeout=self._timeout)  # type: ignore[arg-type]  # requests takes a float; the stubs say int
            self._local.client = client
        token = self._token  # read once: another thread may drop an expired token meanwhile
        if token is None:
            token = self._login()
        client.token = token
        return client

    def _login(self) -> str:
        creds = self._credentials
        if creds.token:
            self._token = creds.token
            return creds.token
        with self._login_lock:
            client = hvac.Client(url=self.addr, timeout=self._timeout)  # type: ignore[arg-type]  # requests takes a float; the stubs say int
            try:
                result = client.auth.approle.login(
                    role_id=creds.role_id, secret_id=creds.secret_id, mount_point=creds.approle_mount
                )
            except (hvac_errors.InvalidRequest, hvac_errors.Forbidden) as exc:
                raise VaultAuthError("Vault rejected ecert's AppRole credentials") from exc
            except Exception as exc:  # connection problems, sealed...
                raise _translate(exc, self.addr) from exc
            token = str(result["auth"]["client_token"])
            self._token = token
            log.info("logged in to Vault with AppRole", extra={"vault_addr": self.addr})
            return token

    def request(self, method: str, path: str, json: dict[str, Any] | None = None) -> dict[str, Any]:
        """One API call (``path`` without ``/v1/``); logs in again once if the token expired."""
        for attempt in (1, 2):
            client = self._client()
            try:
                response = client.adapter.request(method, f"/v1/{path}", json=json)
            except hvac_errors.Forbidden as exc:
                if attempt == 1 and self._token_expired(client):
                    self._token = None
                    if self._credentials.token:
                        raise VaultAuthError("Vault rejected ecert's token (wrong or expired)") from exc
                    continue
                raise KeyOperationDenied(f"Vault's policy refuses {method} {path}") from exc
            except Exception as exc:
                raise _translate(exc, self.addr, path) from exc
            if isinstance(response, requests.Response):  # 204 No Content
                return {}
            return response or {}
        raise VaultAuthError("could not authenticate to Vault")  # pragma: no cover

    def _token_expired(self, client: hvac.Client) -> bool:
        try:
            client.auth.token.lookup_self()
        except hvac_errors.Forbidden:
            return True
        except Exception:
            return False
        return False

    # -- unauthenticated status ---------------------------------------------------------
    def health(self) -> VaultHealth:
        return read_health(self.addr, timeout=min(self._timeout, 3.0))


def read_health(addr: str, *, timeout: float = 3.0) -> VaultHealth:
    """``sys/health`` without authentication; never raises."""
    try:
        response = requests.get(
            f"{addr.rstrip('/')}/v1/sys/health",
            params={"standbyok": "false", "sealedcode": "503", "uninitcode": "501"},
            timeout=timeout,
        )
        body = response.json()
    except (requests.RequestException, ValueError):
        return VaultHealth(reachable=False, initialized=False, sealed=True, active=False)
    return VaultHealth(
        reachable=True,
        initialized=bool(body.get("initialized")),
        sealed=bool(body.get("sealed", True)),
        active=response.status_code == 200,
        version=body.get("version"),
    )


def _translate(exc: Exception, addr: str, path: str = "") -> Exception:
    if isinstance(exc, (requests.ConnectionError, requests.Timeout)):
        return VaultUnavailable(f"Vault at {addr} is unreachable")
    if isinstance(exc, hvac_errors.VaultDown):
        return VaultUnavailable("Vault is sealed")
    if isinstance(exc, (hvac_errors.InternalServerError, hvac_errors.BadGateway, hvac_errors.RateLimitExceeded)):
        return VaultUnavailable(f"Vault failed to answer ({type(exc).__name__})")
    if isinstance(exc, hvac_errors.InvalidPath):
        return KeyNotFound(f"Vault has nothing at {path}")
    if isinstance(exc, hvac_errors.InvalidRequest):
        message = "; ".join(exc.errors or []) if getattr(exc, "errors", None) else str(exc)
        if "not found" in message or "no existing key" in message:
            return KeyNotFound(f"Vault has no such key ({path})")
        return KeyStoreError(f"Vault refused the request to {path}: {message}")
    if isinstance(exc, hvac_errors.VaultError):
        return KeyStoreError(f"Vault error on {path}: {exc}")
    return exc
