"""Operator commands for API clients and token keys: ``ecert client ...`` and ``ecert token rotate``.

``client add`` prints the client secret once; it is stored only as a hash and cannot be shown
again (disable the client and add a new one if it is lost).
"""

from __future__ import annotations

import argparse
from typing import Any

from ecert.errors import InvalidInput
from ecert.commands.common import command_engine, emit
from ecert.settings import Settings

__all__ = ["register"]

ACTOR = "cli:operator"


def _scopes(args: argparse.Namespace) -> list[str]:
    from identity.scopes import ADMIN_SCOPE, DEPARTMENT_SCOPES

    if args.admin:
        if args.department:
            raise InvalidInput("--admin clients have no department: drop --department")
        return [ADMIN_SCOPE, *(args.scope or [])]
    if not args.department:
        raise InvalidInput("give --department CODE (or --admin for a platform administrator client)")
    return list(args.scope or DEPARTMENT_SCOPES)


def cmd_client_add(args: argparse.Namespace, settings: Settings) -> int:
    from ecert.clock import SystemClock
    from ecert.db import session_scope
    from identity.clients import create_client

    scopes = _scopes(args)
    name = args.name or (f"{args.department} system" if args.department else "platform administrator")
    engine = command_engine(settings)
    try:
        with session_scope(engine) as session:
            new = create_client(session, name=name, department=args.department, scopes=scopes, actor=ACTOR,
                                now=SystemClock().now())
    finally:
        engine.dispose()
    client = new.client
    text = (
        f"added API client {client.client_id} ({client.name}) for "
        f"{client.department or 'the whole platform (admin)'} with scopes {' '.join(client.scopes)}\n"
        f"client_id:     {client.client_id}\nclient_secret: {new.secret}\n"
        "The secret is shown only now: store it in the department system's secret store."
    )
    emit(args, {**client.as_dict(), "client_secret": new.secret}, text)
    return 0


def cmd_client_list(args: argparse.Namespace, settings: Settings) -> int:
    from sqlmodel import Session

    from identity.clients import list_clients

    engine = command_engine(settings)
    with Session(engine) as session:
        clients = list_clients(session, department=args.department)
    engine.dispose()
    lines = [
        f"{c.client_id}  {c.department or '(admin)':<12} {'disabled' if c.disabled_at else 'active  '} "
        f"{c.name}  [{' '.join(c.scopes)}]"
        for c in clients
    ]
    emit(args, [c.as_dict() for c in clients], "\n".join(lines) or "no API clients")
    return 0


def cmd_client_disable(args: argparse.Namespace, settings: Settings) -> int:
    from ecert.clock import SystemClock
    from ecert.db import session_scope
    from identity.clients import disable_client

    engine = command_engine(settings)
    try:
        with session_scope(engine) as session:
            client = disable_client(session, args.client_id, actor=ACTOR, now=SystemClock().now())
    finally:
        engine.dispose()
    emit(args, client.as_dict(), f"API client {client.client_id} disabled; its tokens run out within 15 minutes")
    return 0


def cmd_token_rotate(args: argparse.Namespace, settings: Settings) -> int:
    """Add a version of the token-signing key; running servers sign with it within a minute."""
    from identity.tokens import DEFAULT_KEY_NAME, TokenKeys
    from ecert.runtime import keystore_for, start_embedded_vault

    server = None
    if settings.embedded_vault:
        server, settings = start_embedded_vault(settings)
    try:
        info = TokenKeys(keystore_for(settings), args.key or DEFAULT_KEY_NAME).rotate()
    finally:
        if server is not None:
            server.stop()
    versions = sorted(info.versions)
    emit(args, {"key": info.name, "latest_version": info.latest_version, "versions": versions},
          f"token key {info.name} now at version {info.latest_version}; versions {versions} all verify")
    return 0


def register(sub: Any) -> None:
    clients = sub.add_parser("client", help="API clients of departments (OAuth2 client credentials)")
    commands = clients.add_subparsers(dest="client_command", required=True)
    add = commands.add_parser("add", help="add a client; prints its secret once")
    add.add_argument("--department", help="department code (must be registered)")
    add.add_argument("--scope", action="append", help="a scope to grant (repeatable; default: all department scopes)")
    add.add_argument("--name", help="what system the client is, for people")
    add.add_argument("--admin", action="store_true", help="a platform administrator client (no department)")
    add.set_defaults(func=cmd_client_add)
    listing = commands.add_parser("list", help="list clients")
    listing.add_argument("--department", help="only this department's")
    listing.set_defaults(func=cmd_client_list)
    disable = commands.add_parser("disable", help="stop a client getting tokens")
    disable.add_argument("client_id")
    disable.set_defaults(func=cmd_client_disable)
    token = sub.add_parser("token", help="access-token signing key").add_subparsers(dest="token_command", required=True)
    rotate = token.add_parser("rotate", help="rotate the token-signing key in Vault (old versions keep verifying)")
    rotate.add_argument("--key", help="key name (default token-signing)")
    rotate.set_defaults(func=cmd_token_rotate)
    for parser in (add, listing, disable, rotate):
        parser.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="machine-readable output")
