"""Containers for tests: the real services, with per-address limits out of the way."""

from __future__ import annotations

import dataclasses

from ecert.container import Container
from ecert.ratelimit import TokenBuckets
from ecert.runtime import Runtime

__all__ = ["generous", "services_for"]


def generous(container: Container) -> Container:
    """``container`` with per-address limits no test reaches by accident (tests of the limits swap in their own)."""
    verification = dataclasses.replace(container.verification, limiter=TokenBuckets(1000, 1000))
    return container.replace(login_limit=TokenBuckets(1000, 1000), verification=verification)


def services_for(runtime: Runtime) -> Container:
    """A container of its own over ``runtime`` (an app with other settings, another Vault or database)."""
    return generous(Container.build(runtime))
