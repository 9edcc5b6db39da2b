"""Operator commands of the certificate authority: ``ecert ca``, ``ecert department``, ``ecert seal``, ``ecert cert``."""

from __future__ import annotations

import argparse
from typing import Any

from ecert.commands.common import command_container, emit
from ecert.settings import Settings

__all__ = ["register"]

ACTOR = "cli:operator"


def _fingerprint(cert: Any) -> str:
    from cryptography.hazmat.primitives import hashes

    return cert.fingerprint(hashes.SHA256()).hex(":").upper()


def cmd_ca_init(args: argparse.Namespace, settings: Settings) -> int:

    with command_container(settings) as container:
        h = container.ca.bootstrap()
    data = {
        ca.name: {"subject": ca.certificate.subject.rfc4514_string(), "sha256": _fingerprint(ca.certificate),
                  "not_after": ca.certificate.not_valid_after_utc.isoformat(), "key": str(ca.key)}
        for ca in h.authorities
    }
    text = "\n".join(f"{name}: {d['subject']}\n  SHA-256 {d['sha256']}\n  valid until {d['not_after']}, key {d['key']}"
                     for name, d in data.items())
    emit(args, data, text)
    return 0


def cmd_department_add(args: argparse.Namespace, settings: Settings) -> int:
    from ecert.db import session_scope

    with command_container(settings) as container:
        ca = container.ca
        with session_scope(container.engine) as session:
            department, seal = ca.add_department(session, args.code, args.name, name_en=args.name_en, actor=ACTOR)
            data = {"code": department.code, "name": department.name, "name_en": department.name_en,
                    "seal": {"serial": seal.serial, "key": f"{seal.key_name}:v{seal.key_version}",
                             "not_after": seal.not_after.isoformat()}}
    emit(args, data, f"added department {data['code']} ({data['name']}) with seal certificate {seal.serial}")
    return 0


def cmd_department_list(args: argparse.Namespace, settings: Settings) -> int:
    from sqlmodel import Session

    from ca.departments import list_departments
    from ecert.db import make_engine

    engine = make_engine(settings.resolved_database_url)
    with Session(engine) as session:
        rows = [{"code": d.code, "name": d.name, "name_en": d.name_en, "disabled": d.disabled_at is not None}
                for d in list_departments(session, include_disabled=args.all)]
    engine.dispose()
    emit(args, rows, "\n".join(f"{r['code']:<16} {r['name']}{'  (disabled)' if r['disabled'] else ''}" for r in rows)
         or "no departments")
    return 0


def cmd_department_disable(args: argparse.Namespace, settings: Settings) -> int:
    from ca.departments import disable_department
    from ecert.clock import SystemClock
    from ecert.db import make_engine, session_scope

    engine = make_engine(settings.resolved_database_url)
    with session_scope(engine) as session:
        disable_department(session, args.code, actor=ACTOR, now=SystemClock().now())
    engine.dispose()
    emit(args, {"code": args.code, "disabled": True}, f"department {args.code} disabled")
    return 0


def _seal_view(row: Any) -> dict[str, Any]:
    return {"serial": row.serial, "key": f"{row.key_name}:v{row.key_version}", "not_before": row.not_before.isoformat(),
            "not_after": row.not_after.isoformat(), "revoked_at": row.revoked_at.isoformat() if row.revoked_at else None,
            "reason": row.revocation_reason}


def cmd_seal_renew(args: argparse.Namespace, settings: Settings) -> int:
    from ecert.db import session_scope

    with command_container(settings) as container:
        with session_scope(container.engine) as session:
            data = _seal_view(container.ca.renew_seal(session, args.code, actor=ACTOR, rotate=not args.same_key))
    emit(args, data, f"new seal certificate {data['serial']} for {args.code} (key {data['key']}); the previous one stays valid")
    return 0


def cmd_seal_list(args: argparse.Namespace, settings: Settings) -> int:
    from sqlmodel import Session

    from ca.seals import list_seals
    from ecert.db import make_engine

    engine = make_engine(settings.resolved_database_url)
    with Session(engine) as session:
        rows = [_seal_view(r) for r in list_seals(session, args.code)]
    engine.dispose()
    emit(args, rows, "\n".join(
        f"{r['serial']}  {r['key']:<20} until {r['not_after']}{'  REVOKED ' + str(r['reason']) if r['revoked_at'] else ''}"
        for r in rows) or "no seal certificates")
    return 0


def cmd_cert_revoke(args: argparse.Namespace, settings: Settings) -> int:
    from ecert.db import session_scope

    with command_container(settings) as container:
        ca = container.ca
        with session_scope(container.engine) as session:
            row = ca.revoke(session, args.serial, args.reason, actor=ACTOR)
            data = _seal_view(row)
        ca.refresh_crls()
    emit(args, data, f"revoked {data['serial']} ({data['reason']}); the CRL and OCSP show it now")
    return 0


def register(sub: Any) -> None:
    ca = sub.add_parser("ca", help="the certificate authority").add_subparsers(dest="ca_command", required=True)
    init = ca.add_parser("init", help="create the root, issuing CA, OCSP and TSA certificates (idempotent)")
    init.add_argument("--json", action="store_true")
    init.set_defaults(func=cmd_ca_init)

    dept = sub.add_parser("department", help="departments").add_subparsers(dest="department_command", required=True)
    add = dept.add_parser("add", help="register a department and certify its seal key")
    add.add_argument("code", help="short code, e.g. SCJGJ")
    add.add_argument("name", help="name as it appears in certificates (at most 64 bytes of UTF-8)")
    add.add_argument("--name-en", help="English name")
    add.add_argument("--json", action="store_true")
    add.set_defaults(func=cmd_department_add)
    lst = dept.add_parser("list", help="list departments")
    lst.add_argument("--all", action="store_true", help="include disabled departments")
    lst.add_argument("--json", action="store_true")
    lst.set_defaults(func=cmd_department_list)
    dis = dept.add_parser("disable", help="disable a department (no new seals or licences)")
    dis.add_argument("code")
    dis.add_argument("--json", action="store_true")
    dis.set_defaults(func=cmd_department_disable)

    seal = sub.add_parser("seal", help="department seal certificates").add_subparsers(dest="seal_command", required=True)
    renew = seal.add_parser("renew", help="rotate the seal key and certify the new version (the old stays valid)")
    renew.add_argument("code")
    renew.add_argument("--same-key", action="store_true", help="re-certify the current key version instead")
    renew.add_argument("--json", action="store_true")
    renew.set_defaults(func=cmd_seal_renew)
    slist = seal.add_parser("list", help="a department's seal certificates")
    slist.add_argument("code")
    slist.add_argument("--json", action="store_true")
    slist.set_defaults(func=cmd_seal_list)

    cert = sub.add_parser("cert", help="certificates issued by ecert's CAs").add_subparsers(dest="cert_command", required=True)
    revoke = cert.add_parser("revoke", help="revoke a certificate (RFC 5280 reason)")
    revoke.add_argument("serial", help="serial number in hex")
    revoke.add_argument("--reason", required=True, help="e.g. keyCompromise, superseded, cessationOfOperation")
    revoke.add_argument("--json", action="store_true")
    revoke.set_defaults(func=cmd_cert_revoke)
