"""Subcommands of ``ecert``, one module per topic.

Each module defines ``register(subparsers)`` adding its commands; a command handler has the
signature ``(args, settings) -> int``. Add a module name to ``MODULES`` to publish it.
"""

MODULES: tuple[str, ...] = ("ca", "licences", "audit", "clients", "verify", "accounts", "blobs")
