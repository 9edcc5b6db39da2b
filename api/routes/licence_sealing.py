"""How licences get sealed: the department's seal (ca) and the PAdES sealer (signing), wired once per runtime."""

from __future__ import annotations

from api.problems import register_problem_type
from ca.service import CertificateAuthority, authority_for
from ecert.runtime import Runtime
from signing import InvalidPdf, PadesSealer, SealingUnavailable, SealMisconfigured, SealUnusable, UploadLimits

__all__ = ["build", "sealer_for"]

for _error in (InvalidPdf, SealingUnavailable, SealMisconfigured, SealUnusable):
    register_problem_type(_error.slug, _error.title, (_error.__doc__ or _error.title).strip())


def sealer_for(runtime: Runtime) -> PadesSealer:
    """The runtime's sealer: seals from the CA, timestamps from its TSA, CRLs and OCSP embedded (PAdES B-LT)."""
    def factory(rt: Runtime) -> PadesSealer:
        ca = authority_for(rt)
        return PadesSealer(rt.keystore, ca, ca, ca, clock=rt.clock,
                           upload_limits=UploadLimits(max_bytes=rt.settings.max_upload_bytes))

    return runtime.service("sealer", factory)


def build(runtime: Runtime) -> tuple[CertificateAuthority, PadesSealer]:
    """(QR keys, PDF sealer) for the licence service: both are the department's seal."""
    return authority_for(runtime), sealer_for(runtime)
