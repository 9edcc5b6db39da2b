"""Tamper-evident audit trail (and, later, the transparency log of issued e-licences)."""

from audit.trail import record_event

__all__ = ["record_event"]
