"""Errors of the signing package."""

from __future__ import annotations

from ecert.errors import ConfigurationError, InvalidInput, ServiceUnavailable

__all__ = ["InvalidPdf", "SealMisconfigured", "SealingUnavailable"]


class InvalidPdf(InvalidInput):
    """An uploaded PDF that we refuse to seal; ``detail`` says why."""

    slug = "invalid-pdf"
    title = "The PDF cannot be sealed"


class SealMisconfigured(ConfigurationError):
    """The seal certificate does not match its Vault key, or its chain is incomplete."""

    slug = "seal-misconfigured"
    title = "The department seal is misconfigured"


class SealingUnavailable(ServiceUnavailable):
    """The TSA or the revocation source failed; sealing can be retried."""

    slug = "sealing-unavailable"
    title = "Sealing is temporarily unavailable"
