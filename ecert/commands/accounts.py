"""Operator commands for people's side of identity: ``ecert staff add`` and ``ecert rp add``.

``staff add`` reads the staff member's initial password from stdin (or a prompt); ``rp add``
prints a confidential relying party's client secret once.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any

from ecert.commands.clients import ACTOR
from ecert.commands.common import command_engine, command_runtime, emit
from ecert.settings import Settings

__all__ = ["register"]


def _password() -> str:
    if sys.stdin.isatty():
        return getpass.getpass("initial password: ")
    return sys.stdin.readline().rstrip("\n")


def cmd_staff_add(args: argparse.Namespace, settings: Settings) -> int:
    from certificates.holders import PiiVault
    from ecert.db import session_scope
    from identity.counter import add_staff

    with command_runtime(settings) as runtime, session_scope(runtime.engine) as session:
        account_id = add_staff(session, PiiVault(runtime.keystore), username=args.username, name=args.name,
                               id_number=args.id_number, password=_password(), roles=args.role or ["counter"],
                               hall=args.hall, actor=ACTOR, now=runtime.clock.now())
    data: dict[str, Any] = {"account_id": account_id, "username": args.username.lower(), "hall": args.hall,
                            "roles": args.role or ["counter"]}
    emit(args, data, f"staff {args.username.lower()} ({account_id}) added to hall {args.hall}; log in at /counter/login")
    return 0


def cmd_rp_add(args: argparse.Namespace, settings: Settings) -> int:
    from ecert.clock import SystemClock
    from ecert.db import session_scope
    from identity.oidc import register_relying_party

    engine = command_engine(settings)
    try:
        with session_scope(engine) as session:
            new = register_relying_party(session, name=args.name, redirect_uris=args.redirect_uri,
                                         scopes=args.scope or ["openid", "profile"], confidential=not args.public,
                                         actor=ACTOR, now=SystemClock().now(), purpose=args.purpose)
    finally:
        engine.dispose()
    text = f"relying party {new.party.client_id} ({new.party.name})\nclient_id:     {new.party.client_id}\n"
    text += f"client_secret: {new.secret}\nThe secret is shown only now." if new.secret else "public client: PKCE only"
    emit(args, {**new.party.as_dict(), "purpose": args.purpose, "client_secret": new.secret}, text)
    return 0


def register(subparsers: Any) -> None:
    staff = subparsers.add_parser("staff", help="counter staff accounts").add_subparsers(dest="staff_command", required=True)
    add = staff.add_parser("add", help="add a counter staff account (password on stdin)")
    add.add_argument("--username", required=True)
    add.add_argument("--name", required=True)
    add.add_argument("--id-number", required=True, help="the staff member's resident ID number (stored encrypted)")
    add.add_argument("--hall", required=True, help="service hall code")
    add.add_argument("--role", action="append", choices=["counter", "supervisor"])
    add.add_argument("--json", action="store_true")
    add.set_defaults(func=cmd_staff_add)
    rp = subparsers.add_parser("rp", help="OpenID Connect relying parties").add_subparsers(dest="rp_command", required=True)
    rp_add = rp.add_parser("add", help="register a platform application that logs people in through ecert")
    rp_add.add_argument("--name", required=True)
    rp_add.add_argument("--redirect-uri", action="append", required=True)
    rp_add.add_argument("--scope", action="append", choices=["openid", "profile", "licences:own"])
    rp_add.add_argument("--purpose", help="why the app reads licences (service, eligibility, employment, transaction, "
                        "inspection or a short text): shown on the consent screen and in holders' history")
    rp_add.add_argument("--public", action="store_true", help="no client secret (mobile or browser apps: PKCE only)")
    rp_add.add_argument("--json", action="store_true")
    rp_add.set_defaults(func=cmd_rp_add)
