"""Signed e-licence PDFs: rendering, the Vault-backed pyHanko signer, PAdES B-LT sealing.

- :mod:`signing.render` draws a licence (reportlab, CJK CID font, QR code);
- :mod:`signing.signer` holds the pyHanko ``Signer`` over the key store and the in-process ``TimeStamper``;
- :mod:`signing.sealer` seals batches (one Vault round trip each) and uploaded PDFs;
- :mod:`signing.material` declares what the CA provides (seal directory, TSA, revocation data).

See docs/signing.md.
"""

from signing.errors import InvalidPdf, SealingUnavailable, SealMisconfigured, SealUnusable
from signing.material import (
    BatchTimestampAuthority,
    RevocationSource,
    Seal,
    SealCredential,
    SealDirectory,
    TimestampAuthority,
)
from signing.render import RenderedLicence, render_licence
from signing.sealer import SEAL_FIELD, PadesSealer
from signing.uploads import UploadLimits, check_upload

__all__ = [
    "BatchTimestampAuthority",
    "InvalidPdf",
    "PadesSealer",
    "RenderedLicence",
    "RevocationSource",
    "SEAL_FIELD",
    "Seal",
    "SealCredential",
    "SealDirectory",
    "SealMisconfigured",
    "SealUnusable",
    "SealingUnavailable",
    "TimestampAuthority",
    "UploadLimits",
    "check_upload",
    "render_licence",
]
