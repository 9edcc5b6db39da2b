"""Errors of the certificate authority (each a stable problem type)."""

from __future__ import annotations

from ecert.errors import Conflict, InvalidInput, NotFound, ServiceUnavailable

__all__ = [
    "ProfileViolation",
    "UnknownDepartment",
    "DuplicateDepartment",
    "UnknownCertificate",
    "AlreadyRevoked",
    "InvalidRevocationReason",
    "UnknownAuthority",
    "HierarchyNotReady",
    "InvalidCsr",
    "DepartmentDisabled",
]


class ProfileViolation(InvalidInput):
    """The certificate request breaks its profile; nothing was signed."""

    slug = "certificate-profile-violation"
    title = "The certificate request does not fit its profile"


class InvalidCsr(InvalidInput):
    """The certificate signing request is malformed, badly signed or asks for forbidden extensions."""

    slug = "invalid-csr"
    title = "The certificate signing request is not acceptable"


class UnknownDepartment(NotFound):
    """No department is registered with this code."""

    slug = "unknown-department"
    title = "Unknown department"


class DepartmentDisabled(Conflict):
    """The department is disabled; it can no longer get seal certificates or issue."""

    slug = "department-disabled"
    title = "The department is disabled"


class DuplicateDepartment(Conflict):
    """A department with this code already exists."""

    slug = "duplicate-department"
    title = "A department with this code already exists"


class UnknownCertificate(NotFound):
    """No certificate issued by ecert has this serial number."""

    slug = "unknown-certificate"
    title = "Unknown certificate"


class AlreadyRevoked(Conflict):
    """The certificate is already revoked (revocation is final)."""

    slug = "certificate-already-revoked"
    title = "The certificate is already revoked"


class InvalidRevocationReason(InvalidInput):
    """The revocation reason is not one of RFC 5280's CRLReason values usable here."""

    slug = "invalid-revocation-reason"
    title = "Invalid revocation reason"


class UnknownAuthority(NotFound):
    """No certificate authority of ecert has this name."""

    slug = "unknown-authority"
    title = "Unknown certificate authority"


class HierarchyNotReady(ServiceUnavailable):
    """The CA hierarchy has not been created yet (``ecert ca init``, or first start)."""

    slug = "ca-not-initialised"
    title = "The certificate authority is not initialised"
