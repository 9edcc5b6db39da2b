"""Operator commands for the blob store: ``ecert blobs orphans`` lists (and with ``--delete`` removes) orphan PDFs."""

from __future__ import annotations

import argparse
import datetime as dt
from typing import Any

from ecert.commands.common import command_engine, emit
from ecert.settings import Settings

__all__ = ["register"]


def cmd_blobs_orphans(args: argparse.Namespace, settings: Settings) -> int:
    from sqlmodel import Session

    from certificates.orphans import ListableStore, collect_orphans, find_orphans
    from ecert.container import blob_store_for

    store = blob_store_for(settings)
    if not isinstance(store, ListableStore):
        emit(args, {"store": settings.blob_store, "orphans": [], "deleted": False},
             f"the {settings.blob_store} store writes in the issuing transaction: it has no orphans")
        return 0
    before = dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=args.older_than_hours)
    engine = command_engine(settings)
    try:
        if args.delete:
            orphans = collect_orphans(engine, store, before=before, actor="cli:operator")
        else:
            with Session(engine) as session:
                orphans = find_orphans(session, store, before=before)
    finally:
        engine.dispose()
    listed = [{"key": o.key, "modified": o.modified.isoformat()} for o in orphans]
    verb = "deleted" if args.delete else "found"
    lines = [f"{o['modified']}  {o['key']}" for o in listed] + [f"{len(listed)} orphan blob(s) {verb}"]
    emit(args, {"store": settings.blob_store, "orphans": listed, "deleted": bool(args.delete)}, "\n".join(lines))
    return 0


def register(sub: Any) -> None:
    blobs = sub.add_parser("blobs", help="the sealed-PDF store").add_subparsers(dest="blobs_command", required=True)
    orphans = blobs.add_parser("orphans", help="PDFs no licence names (left by issuances that rolled back)")
    orphans.add_argument("--older-than-hours", type=float, default=24.0,
                         help="only blobs last written this long ago (default 24; keep it past any transaction in flight)")
    orphans.add_argument("--delete", action="store_true", help="delete them (each deletion is audited)")
    orphans.add_argument("--json", action="store_true")
    orphans.set_defaults(func=cmd_blobs_orphans)
