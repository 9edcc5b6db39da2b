"""Errors of the signing package."""

from __future__ import annotations

from ecert.errors import ConfigurationError, Conflict, InvalidInput, ServiceUnavailable

__all__ = ["ActiveContent", "InvalidPdf", "SealMisconfigured", "SealUnusable", "SealingUnavailable"]


class InvalidPdf(InvalidInput):
    """An uploaded PDF that we refuse to seal; ``detail`` says why."""

    slug = "invalid-pdf"
    title = "The PDF cannot be sealed"


class ActiveContent(InvalidPdf):
    """An uploaded PDF with scripts, actions, embedded files or multimedia; ``detail`` names which."""

    slug = "pdf-active-content"
    title = "The PDF holds active content"


class SealMisconfigured(ConfigurationError):
    """The seal certificate does not match its Vault key, or its chain is incomplete."""

    slug = "seal-misconfigured"
    title = "The department seal is misconfigured"


class SealUnusable(Conflict):
    """The department's seal certificate does not validate today (revoked, expired, untrusted)."""

    slug = "seal-unusable"
    title = "The department seal cannot be used"


class SealingUnavailable(ServiceUnavailable):
    """The TSA or the revocation source failed; sealing can be retried."""

    slug = "sealing-unavailable"
    title = "Sealing is temporarily unavailable"
