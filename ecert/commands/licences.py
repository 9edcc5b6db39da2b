"""Operator commands for the licence library: ``ecert type ...`` and ``ecert licence ...``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ecert.errors import InvalidInput
from ecert.commands.common import command_container, command_engine, emit
from ecert.settings import Settings

__all__ = ["register"]


def cmd_type_add(args: argparse.Namespace, settings: Settings) -> int:
    from certificates.types import add_type, parse_type_spec
    from certificates.views import type_view
    from ecert.clock import SystemClock
    from ecert.db import session_scope

    try:
        data = json.loads(Path(args.file).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"cannot read licence type file {args.file}: {exc}") from exc
    try:
        spec = parse_type_spec(data)
    except InvalidInput as exc:
        problems = "; ".join(f"{e['pointer']}: {e['detail']}" for e in exc.extensions.get("errors", []))
        raise InvalidInput(f"{exc.detail}: {problems}") from exc
    engine = command_engine(settings)
    with session_scope(engine) as session:
        row = add_type(session, department_code=args.department, spec=spec, actor="cli:operator", now=SystemClock().now())
        view = type_view(row)
    engine.dispose()
    emit(args, view, f"added licence type {view['code']} v{view['version']} for department {view['department']}")
    return 0


def cmd_type_list(args: argparse.Namespace, settings: Settings) -> int:
    from sqlmodel import Session

    from certificates.types import list_types
    from certificates.views import type_view

    engine = command_engine(settings)
    with Session(engine) as session:
        rows = [type_view(r) for r in list_types(session, department_code=args.department)]
    engine.dispose()
    lines = [f"{r['department']:<12} {r['code']:<10} v{r['version']:<3} {'active ' if r['active'] else 'disabled'} {r['name_en']} / {r['name_zh']}" for r in rows]
    emit(args, rows, "\n".join(lines) or "no licence types")
    return 0


def cmd_type_toggle(args: argparse.Namespace, settings: Settings) -> int:
    from certificates.types import set_type_active
    from ecert.clock import SystemClock
    from ecert.db import session_scope

    active = args.type_command == "enable"
    engine = command_engine(settings)
    with session_scope(engine) as session:
        count = set_type_active(session, department_code=args.department, code=args.code, active=active,
                                actor="cli:operator", now=SystemClock().now())
    engine.dispose()
    emit(args, {"code": args.code, "department": args.department, "active": active, "versions": count},
          f"licence type {args.code} of {args.department} {'enabled' if active else 'disabled'}")
    return 0


def cmd_licence_bulk_run(args: argparse.Namespace, settings: Settings) -> int:
    from certificates.bulk import run_pending

    with command_container(settings) as container:
        worked = run_pending(container.engine, container.licences.issuer, owner="cli")
    emit(args, {"jobs": worked}, f"worked on {worked} bulk job(s)")
    return 0


def cmd_licence_expire(args: argparse.Namespace, settings: Settings) -> int:
    """Expire every licence past its validity; exit 1 (listing them) if some could not be expired."""
    from certificates.records import expire_due
    from ecert.clock import SystemClock
    from ecert.db import session_scope

    engine = command_engine(settings)
    total, failed = 0, dict[str, str]()
    while True:
        with session_scope(engine) as session:
            report = expire_due(session, now=SystemClock().now(), limit=1000, skip=failed)
        total += report.expired
        failed.update(report.failed)
        if report.expired + len(report.failed) < 1000:
            break
    engine.dispose()
    lines = [f"{total} licence(s) expired"] + [f"not expired: licence {key}: {why}" for key, why in failed.items()]
    emit(args, {"expired": total, "failed": [{"licence": key, "error": why} for key, why in failed.items()]},
         "\n".join(lines))
    return 1 if failed else 0


def register(sub: Any) -> None:
    types = sub.add_parser("type", help="licence types").add_subparsers(dest="type_command", required=True)
    add = types.add_parser("add", help="add a licence type (or its next version) from a JSON file")
    add.add_argument("--department", required=True, help="department code")
    add.add_argument("file", help="JSON file: code, name_zh, name_en, fields_schema, validity, layout, disclosure")
    add.set_defaults(func=cmd_type_add)
    listing = types.add_parser("list", help="list licence types")
    listing.add_argument("--department", help="only this department")
    listing.set_defaults(func=cmd_type_list)
    for name in ("disable", "enable"):
        toggle = types.add_parser(name, help=f"{name} a licence type (all versions)")
        toggle.add_argument("--department", required=True)
        toggle.add_argument("code")
        toggle.set_defaults(func=cmd_type_toggle)
    for p in (add, listing):
        p.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="machine-readable output")
    licences = sub.add_parser("licence", help="e-licences").add_subparsers(dest="licence_command", required=True)
    licences.add_parser("bulk-run", help="process pending bulk issuance jobs now").set_defaults(func=cmd_licence_bulk_run)
    licences.add_parser("expire", help="mark licences past their validity as expired").set_defaults(func=cmd_licence_expire)


