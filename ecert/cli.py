"""The ``ecert`` command: serve, administration and offline checks.

Output is for people by default and JSON with ``--json``, so operators can script it.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import signal
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ecert.commands import MODULES
from ecert.errors import EcertError

if TYPE_CHECKING:
    from ecert.settings import Settings
    from keys.supervisor import OpenBaoSupervisor

__all__ = ["main"]

log = logging.getLogger("ecert")
Command = Callable[[argparse.Namespace, "Settings"], int]


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from ecert.db import make_engine, migrate

    # uvicorn re-raises SIGTERM after its graceful shutdown; make that an exception so the
    # ``finally`` below still stops the embedded OpenBao.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    supervisor = None
    if settings.embedded_vault:
        supervisor, settings = _supervised_vault(settings)
    try:
        engine = make_engine(settings.resolved_database_url)
        migrate(engine)
        engine.dispose()
        _prepare_first_start(settings)
        env = {
            "ECERT_VAULT_ADDR": settings.vault_addr or "",
            "ECERT_AUTO_MIGRATE": "false",
            "ECERT_DATA_DIR": str(settings.data_dir),
        }
        if settings.vault_role_id and settings.vault_secret_id:
            env["ECERT_VAULT_ROLE_ID"] = settings.vault_role_id
            env["ECERT_VAULT_SECRET_ID"] = settings.vault_secret_id.get_secret_value()
        os.environ.update(env)
        if settings.workers > 1:
            metrics_dir = settings.data_dir / "metrics"
            metrics_dir.mkdir(parents=True, exist_ok=True)
            for stale in metrics_dir.glob("*.db"):
                stale.unlink()
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir.resolve())
        log.info(
            "ecert is starting",
            extra={"url": settings.public_url, "docs": f"{settings.public_url}/docs", "workers": settings.workers},
        )
        uvicorn.run(
            "api.app:create_app_from_env",
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=settings.workers,
            log_config=None,
            access_log=False,
        )
    finally:
        if supervisor is not None:
            supervisor.stop()
    return 0


def _supervised_vault(settings: Settings) -> tuple[OpenBaoSupervisor, Settings]:
    """Own the embedded OpenBao for the life of ``serve``: started, then restarted and unsealed as needed."""
    from pydantic import SecretStr

    from keys.openbao import ManagedOpenBao
    from keys.supervisor import OpenBaoSupervisor

    server = ManagedOpenBao(settings.data_dir / "openbao", port=settings.embedded_vault_port,
                            mount=settings.vault_transit_mount)
    supervisor = OpenBaoSupervisor(server)
    credentials = supervisor.start()
    log.info("embedded OpenBao ready and supervised", extra={"vault_addr": server.addr, "vault_pid": server.pid})
    return supervisor, settings.model_copy(update={
        "vault_addr": server.addr,
        "vault_role_id": credentials.role_id,
        "vault_secret_id": SecretStr(credentials.secret_id or ""),
    })


def _prepare_first_start(settings: Settings) -> None:
    """Before the workers start: create the CA hierarchy; on an empty database, seed the demo."""
    from ecert.container import Container
    from ecert.demo import seed_demo
    from ecert.runtime import Runtime

    runtime = Runtime.build(settings.model_copy(update={"auto_migrate": False}))
    try:
        container = Container.build(runtime)
        container.ca.bootstrap()
        if settings.demo:
            info = seed_demo(container)
            if info is not None:
                print(info.banner(), flush=True)
    finally:
        runtime.close()


def cmd_db_upgrade(args: argparse.Namespace, settings: Settings) -> int:
    from ecert.commands.common import emit
    from ecert.db import make_engine, migrate

    engine = make_engine(settings.resolved_database_url)
    migrate(engine)
    emit(args, {"status": "up-to-date"}, "database schema is up to date")
    return 0


def cmd_db_revision(args: argparse.Namespace, settings: Settings) -> int:
    """Developers: autogenerate a migration on one package's branch against a scratch SQLite."""
    import importlib
    import tempfile
    from pathlib import Path

    from alembic import command
    from alembic.script import ScriptDirectory

    from ecert.db import alembic_config, make_engine, migrate

    with tempfile.TemporaryDirectory() as scratch:
        engine = make_engine(f"sqlite:///{scratch}/scratch.db")
        migrate(engine)
        config = alembic_config(engine)
        versions = Path(importlib.import_module(args.package).__file__ or "").parent / "migrations" / "versions"
        versions.mkdir(parents=True, exist_ok=True)
        (versions.parent / "__init__.py").touch()
        config.set_main_option("version_locations", (config.get_main_option("version_locations") or "") + f" {versions}")
        heads = ScriptDirectory.from_config(config).get_revisions(args.package + "@head") if _has_branch(config, args.package) else ()
        command.revision(
            config,
            message=args.message,
            autogenerate=True,
            head=f"{args.package}@head" if heads else "base",
            branch_label=None if heads else args.package,
            version_path=str(versions),
        )
    return 0


def _has_branch(config: Any, label: str) -> bool:
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(config)
    return any(label in (rev.branch_labels or ()) for rev in script.walk_revisions())


def cmd_vault_status(args: argparse.Namespace, settings: Settings) -> int:
    from ecert.commands.common import emit
    from keys.vault import read_health

    addr = settings.vault_addr or f"http://127.0.0.1:{settings.embedded_vault_port}"
    health = read_health(addr)
    emit(args, {"addr": addr, **health.__dict__}, f"{addr}: {'ready' if health.ready else 'not ready'} {health}")
    return 0 if health.ready else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ecert", description=__doc__)
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("serve", help="run the API (starts the embedded OpenBao unless VAULT_ADDR is set)").set_defaults(
        func=cmd_serve
    )
    db = sub.add_parser("db", help="database schema").add_subparsers(dest="db_command", required=True)
    db.add_parser("upgrade", help="apply all migrations").set_defaults(func=cmd_db_upgrade)
    revision = db.add_parser("revision", help="(developers) autogenerate a migration for a package")
    revision.add_argument("package")
    revision.add_argument("-m", "--message", required=True)
    revision.set_defaults(func=cmd_db_revision)
    vault = sub.add_parser("vault", help="the key service").add_subparsers(dest="vault_command", required=True)
    vault.add_parser("status", help="is Vault reachable and unsealed").set_defaults(func=cmd_vault_status)
    for module_name in MODULES:
        importlib.import_module(f"ecert.commands.{module_name}").register(sub)
    return parser


def _verify_arguments(argv: Sequence[str]) -> list[str] | None:
    """``ecert [--json] verify ...``: its arguments, for the fast path that loads neither settings nor other commands."""
    options = [a for a in argv[: argv.index("verify")]] if "verify" in argv else None
    if options is None or any(a != "--json" for a in options):
        return None
    rest = list(argv[len(options) + 1:])
    return [*rest, "--json"] if options and "--json" not in rest else rest


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    verify_argv = _verify_arguments(argv)
    if verify_argv is not None and not {"-h", "--help"} & set(verify_argv):
        from ecert.commands import verify

        return verify.main(verify_argv, prog="ecert verify")  # a counter terminal: start-up is most of the time
    from ecert.logs import configure_logging
    from ecert.settings import load_settings

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
        configure_logging(settings.log_level)
        return int(args.func(args, settings))
    except EcertError as exc:
        print(f"ecert: {exc.detail}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
