"""``ecert audit ...`` (the hash-chained trail) and ``ecert transparency ...`` (the public log).

``ecert transparency audit`` is the independent checker: it needs neither the database nor
Vault, only the log's public API or a directory of saved tree heads.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ecert.errors import ConfigurationError, InvalidInput
from ecert.commands.common import command_runtime, emit
from ecert.settings import Settings

__all__ = ["register"]


def require_database(settings: Settings) -> None:
    """Audit commands check an existing register: refuse a database that is not there (instead of creating an
    empty one and finding nothing wrong with it)."""
    import sqlalchemy as sa

    from ecert.db import make_engine

    url = settings.resolved_database_url
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path in ("", ":memory:") or not Path(path).is_file():
            raise ConfigurationError(f"no database at {path or url}: audit commands check an existing register "
                                     "(set ECERT_DATABASE_URL or ECERT_DATA_DIR)")
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            present = sa.inspect(connection).has_table("audit_event")
    finally:
        engine.dispose()
    if not present:
        raise ConfigurationError(f"the database at {engine.url.render_as_string(hide_password=True)} holds no "
                                 "ecert register (no audit trail): nothing to check")


def cmd_verify(args: argparse.Namespace, settings: Settings) -> int:
    from sqlmodel import Session

    from audit.checkpoints import Checkpoint
    from audit.integrity import verify_trail

    require_database(settings)
    anchor = None
    if args.anchor:
        try:
            anchor = Checkpoint.from_json(json.loads(Path(args.anchor).read_text()))
        except (OSError, ValueError, KeyError) as exc:
            raise InvalidInput(f"cannot read anchor checkpoint {args.anchor}: {exc}") from exc
    with command_runtime(settings) as runtime:
        with Session(runtime.engine) as session:
            report = verify_trail(session, runtime.keystore, anchor=anchor)
    if report.ok:
        text = f"audit trail OK: {report.events} events, {report.checkpoints} signed checkpoints, head {report.last_seq}"
    else:
        lines = [f"audit trail BROKEN: first bad entry {report.first_bad_seq}"]
        lines += [f"  {p.kind} at {p.seq}: {p.detail}" for p in report.problems]
        text = "\n".join(lines)
    emit(args, report.to_json(), text)
    return 0 if report.ok else 1


def cmd_reconcile(args: argparse.Namespace, settings: Settings) -> int:
    """Every licence's state against its history, audit events and transparency leaf; exit 1 on any mismatch."""
    from sqlmodel import Session

    from certificates.reconcile import reconcile
    from ecert.db import make_engine

    require_database(settings)
    engine = make_engine(settings.resolved_database_url)
    try:
        with Session(engine) as session:
            report = reconcile(session, department_code=args.department)
    finally:
        engine.dispose()
    if report.ok:
        text = f"reconciled: {report.licences} licence(s), state, history, audit trail and log agree"
    else:
        text = "\n".join([f"MISMATCH in {len({m.licence_id for m in report.mismatches})} of {report.licences} licence(s):"]
                         + [f"  {m.number} ({m.licence_id}) {m.kind}: {m.detail}" for m in report.mismatches])
    emit(args, report.to_json(), text)
    return 0 if report.ok else 1


def cmd_checkpoint(args: argparse.Namespace, settings: Settings) -> int:
    from sqlmodel import Session

    from audit.checkpoints import latest_checkpoint, take_checkpoint

    with command_runtime(settings) as runtime:
        checkpoint = take_checkpoint(runtime.engine, runtime.keystore, runtime.clock)
        if checkpoint is None:  # the head is already signed (or the trail is empty): show the latest
            with Session(runtime.engine) as session:
                checkpoint = latest_checkpoint(session)
    if checkpoint is None:
        emit(args, None, "nothing to checkpoint: the audit trail is empty")
        return 0
    emit(args, checkpoint.to_json(), json.dumps(checkpoint.to_json(), indent=1))
    return 0


def cmd_sign_sth(args: argparse.Namespace, settings: Settings) -> int:
    from audit.tlog import sign_tree_head

    with command_runtime(settings) as runtime:
        head = sign_tree_head(runtime.engine, runtime.keystore, runtime.clock)
    emit(args, head.to_json() if head else None,
         f"signed tree head of size {head.tree_size}" if head else "the current tree size is already signed")
    return 0


def cmd_transparency_audit(args: argparse.Namespace, settings: Settings) -> int:
    from audit import checker

    source: str = args.source
    more = None
    try:
        if source.startswith(("http://", "https://")):
            series = checker.fetch_series(source)
            more = checker.consistency_fetcher(source)
        else:
            series = checker.load_series(Path(source))
        pinned = Path(args.public_key).read_text() if args.public_key else None
    except (OSError, ValueError, KeyError) as exc:
        raise InvalidInput(f"cannot read the tree heads from {source}: {exc}") from exc
    if args.save:
        checker.save_series(series, Path(args.save))
    report = checker.audit_series(series, pinned_key_pem=pinned, more_proofs=more)
    if args.leaf:
        if more is None or report.largest is None:
            raise InvalidInput("--leaf needs a live log URL with at least one valid signed tree head")
        try:
            leaves = [bytes.fromhex(h) for h in args.leaf]
        except ValueError as exc:
            raise InvalidInput(f"--leaf takes hex SHA-256 leaf hashes: {exc}") from exc
        proofs = checker.inclusion_fetcher(source)
        found = [f for f in (checker.check_leaf(report.largest, leaf, proofs) for leaf in leaves) if f is not None]
        report = checker.AuditReport(report.ok and not found, report.heads, report.largest, report.findings + tuple(found))
    if report.ok and report.largest is not None:
        text = f"OK: {report.heads} signed tree heads, consistent up to size {report.largest.tree_size}"
        text += f"; {len(args.leaf)} leaf/leaves included" if args.leaf else ""
    elif report.ok:
        text = "OK: no signed tree heads to check"
    else:
        text = "\n".join(["FAILED:"] + [f"  size {f.tree_size}: {f.kind}: {f.detail}" for f in report.findings])
    emit(args, report.to_json(), text)
    return 0 if report.ok else 1


def cmd_stats(args: argparse.Namespace, settings: Settings) -> int:
    import datetime as dt

    from sqlmodel import Session

    from audit import stats
    from ecert.db import make_engine

    try:
        start, end = dt.date.fromisoformat(args.start), dt.date.fromisoformat(args.end)
    except ValueError as exc:
        raise InvalidInput(f"dates must be YYYY-MM-DD: {exc}") from exc
    engine = make_engine(settings.resolved_database_url)
    try:
        with Session(engine) as session:
            rows = stats.daily_counts(session, start=start, end=end, departments=args.department or None,
                                      metric_prefix=args.metric)
    finally:
        engine.dispose()
    if args.csv:
        print(stats.to_csv(rows), end="")
        return 0
    data = [{**r.__dict__, "day": r.day.isoformat()} for r in rows]
    lines = [f"{r.day} {r.department or '-':<10} {r.metric:<40} {r.dimension or '-':<16} {r.count:>10}" for r in rows]
    emit(args, data, "\n".join(lines) or "no counts in that range")
    return 0


def cmd_dashboard(args: argparse.Namespace, settings: Settings) -> int:
    import datetime as dt

    from sqlmodel import Session

    from audit import stats
    from audit.dashboard import render_dashboard
    from ecert.db import make_engine

    try:
        start, end = dt.date.fromisoformat(args.start), dt.date.fromisoformat(args.end)
    except ValueError as exc:
        raise InvalidInput(f"dates must be YYYY-MM-DD: {exc}") from exc
    engine = make_engine(settings.resolved_database_url)
    try:
        with Session(engine) as session:
            rows = stats.daily_counts(session, start=start, end=end, departments=args.department or None)
    finally:
        engine.dispose()
    title = f"Statistics: {', '.join(args.department)}" if args.department else "Statistics: all departments"
    Path(args.out).write_text(render_dashboard(rows, title=title, start=start, end=end), encoding="utf-8")
    emit(args, {"out": args.out, "rows": len(rows)}, f"wrote {args.out} ({len(rows)} counter rows)")
    return 0


def register(sub: Any) -> None:
    audit = sub.add_parser("audit", help="the hash-chained audit trail").add_subparsers(dest="audit_command", required=True)
    verify = audit.add_parser("verify", help="recompute the chain and checkpoint signatures; name the first bad entry")
    verify.add_argument("--anchor", help="a checkpoint JSON kept outside the database (from `ecert audit checkpoint`)")
    verify.add_argument("--json", action="store_true", help="machine-readable output")
    verify.set_defaults(func=cmd_verify)
    reconciling = audit.add_parser("reconcile", help="compare every licence with its history, audit events and log leaf")
    reconciling.add_argument("--department", help="only this department's licences")
    reconciling.add_argument("--json", action="store_true", help="machine-readable output")
    reconciling.set_defaults(func=cmd_reconcile)
    checkpoint = audit.add_parser("checkpoint", help="sign the current head now and print it (keep it as an anchor)")
    checkpoint.add_argument("--json", action="store_true", help="machine-readable output")
    checkpoint.set_defaults(func=cmd_checkpoint)

    log = sub.add_parser("transparency", help="the public transparency log").add_subparsers(
        dest="transparency_command", required=True)
    check = log.add_parser("audit", help="independently check a series of signed tree heads (URL or directory)")
    check.add_argument("source", help="the ecert base URL (https://...) or a directory of saved tree heads")
    check.add_argument("--public-key", help="PEM of the log key, pinned out of band (default: the published keys)")
    check.add_argument("--save", help="also save the downloaded series into this directory")
    check.add_argument("--leaf", action="append", help="also prove this leaf hash (hex) is in the largest head (URL only)")
    check.add_argument("--json", action="store_true", help="machine-readable output")
    check.set_defaults(func=cmd_transparency_audit)
    sign = log.add_parser("sign", help="sign a tree head of the current size now")
    sign.add_argument("--json", action="store_true", help="machine-readable output")
    sign.set_defaults(func=cmd_sign_sth)

    stats_commands = sub.add_parser("stats", help="daily statistics per department, metric and dimension (operators)")
    stats_sub = stats_commands.add_subparsers(dest="stats_command", required=True)
    page = stats_sub.add_parser("dashboard", help="write the dashboard page (HTML with charts)")
    page.add_argument("--from", dest="start", required=True, help="first day, YYYY-MM-DD")
    page.add_argument("--to", dest="end", required=True, help="last day, YYYY-MM-DD")
    page.add_argument("--department", action="append", help="limit to this department (repeatable)")
    page.add_argument("--out", required=True, help="HTML file to write")
    page.add_argument("--json", action="store_true", help="machine-readable output")
    page.set_defaults(func=cmd_dashboard)
    counts = stats_sub.add_parser("export", help="the daily counts as text, JSON or CSV")
    counts.add_argument("--from", dest="start", required=True, help="first day, YYYY-MM-DD")
    counts.add_argument("--to", dest="end", required=True, help="last day, YYYY-MM-DD")
    counts.add_argument("--department", action="append", help="limit to this department (repeatable)")
    counts.add_argument("--metric", help="limit to metrics starting with this (e.g. certificates.)")
    counts.add_argument("--csv", action="store_true", help="CSV export")
    counts.add_argument("--json", action="store_true", help="machine-readable output")
    counts.set_defaults(func=cmd_stats)
