"""``ecert verify FILE_OR_QR [--bundle FILE] [--root PEM] [--online URL] [--json]``.

Checks a sealed PDF or a scanned QR string. Offline with ``--bundle`` (the signed trust bundle
from ``/api/v1/trust-bundle``; ``--root`` pins our root certificate), online with ``--online``
(the service's live status), or both. No database and no Vault: this runs on a counter terminal.
Exit code 0 when the licence is valid (online) or authentic (offline), 1 when it is not, 2 on
usage errors (unreadable bundle, unreachable service).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ecert.errors import EcertError, InvalidInput, ServiceUnavailable

if TYPE_CHECKING:
    from ecert.settings import Settings

__all__ = ["register", "main"]


def _read_target(target: str) -> tuple[str, bytes | str]:
    path = Path(target)
    if len(target) < 4096 and not path.is_file() and "://" not in target and (
            target.lower().endswith(".pdf") or "/" in target or "\\" in target):
        raise InvalidInput(f"no such file: {target} (give a PDF file, a file holding the QR text, or the QR text itself)")
    if len(target) < 4096 and path.is_file():
        data = path.read_bytes()
        if data[:1024].lstrip().startswith(b"%PDF-") or path.suffix.lower() == ".pdf" or b"\0" in data[:1024] or not data:
            return "pdf", data
        return "qr", data.decode("utf-8", errors="replace").strip()
    return "qr", target.strip()


def _offline(kind: str, payload: bytes | str, args: argparse.Namespace) -> dict[str, Any]:
    from cryptography import x509

    from verify.bundle import load_bundle
    from verify.offline import verify_pdf_offline, verify_qr_offline

    try:
        raw = Path(args.bundle).read_bytes()
        pinned = x509.load_pem_x509_certificate(Path(args.root).read_bytes()) if args.root else None
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"cannot read {exc}") from exc
    bundle = load_bundle(raw, pinned_root=pinned)
    now = dt.datetime.now(dt.timezone.utc)
    if kind == "pdf":
        assert isinstance(payload, bytes)
        from verify.isolation import IsolatedChecks

        isolation = IsolatedChecks(workers=1, deadline=args.deadline, method="fork")  # this process has one thread
        try:
            verdict = verify_pdf_offline(payload, bundle, now=now, isolation=isolation)
        finally:
            isolation.close()
    else:
        verdict = verify_qr_offline(str(payload), bundle, now=now)
    result = verdict.to_json()
    result["bundle"] = {"issued_at": bundle.issued_at.isoformat(), "next_update": bundle.next_update.isoformat(),
                        "root_sha256": bundle.root_sha256, "root_pinned": bundle.pinned, "issuer": bundle.issuer}
    return result


def _online(kind: str, payload: bytes | str, base: str) -> dict[str, Any]:
    import urllib.error
    import urllib.parse
    import urllib.request

    base = base.rstrip("/")
    if kind == "pdf":
        assert isinstance(payload, bytes)
        request = urllib.request.Request(f"{base}/api/v1/verify/pdf", data=payload, method="POST",
                                         headers={"Content-Type": "application/pdf", "Accept": "application/json"})
    else:
        from verify.offline import token_of

        token = token_of(str(payload))
        if token is None:
            raise InvalidInput("the QR text holds no verification link (…/v/<token>)")
        request = urllib.request.Request(f"{base}/api/v1/verify/{urllib.parse.quote(token)}", headers={"Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - the operator's own URL
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        body = exc.read()
        if exc.code == 404 and body.startswith(b"{"):
            return json.loads(body)
        raise ServiceUnavailable(f"the verification service answered {exc.code}: {body[:200]!r}") from exc
    except (urllib.error.URLError, TimeoutError, ValueError) as exc:
        raise ServiceUnavailable(f"cannot reach the verification service at {base}: {exc}") from exc


def _text(result: dict[str, Any], title: str) -> str:
    lines = [f"== {title}: {result['outcome_text']['en']} / {result['outcome_text']['zh']} =="]
    licence = result.get("licence") or {}
    for label, value in (("number", licence.get("number")), ("issuer", licence.get("issuer")),
                         ("valid", f"{(licence.get('valid_from') or '')[:10]} .. {(licence.get('valid_until') or 'no end')[:10]}"
                          if licence.get("valid_from") else None),
                         ("holder", (licence.get("holder") or {}).get("name")), ("status", licence.get("status")),
                         ("reason", licence.get("status_reason")), ("current version", licence.get("superseded_by"))):
        if value:
            lines.append(f"  {label}: {value}")
    for item in result.get("checks", []):
        lines.append(f"  [{'ok' if item['passed'] else 'FAIL'}] {item['name']}: {item['reason']['en']}")
    if result.get("mode") == "offline":
        age = result.get("bundle_age_seconds") or 0
        stale = " (STALE: fetch a new bundle)" if result.get("bundle_stale") else ""
        lines.append(f"  trust bundle: {age / 3600:.1f} h old{stale}; root sha256 {result['bundle']['root_sha256']}"
                     f"{'' if result['bundle']['root_pinned'] else ' (not pinned: compare with the published fingerprint)'}")
    return "\n".join(lines)


def _link_against_payload(qr_text: str, online: dict[str, Any]) -> None:
    """Call out a QR whose link leads to one licence while its signed payload names another."""
    from verify.qrtext import mismatch_reasons, payload_number

    stated, linked = payload_number(qr_text), (online.get("licence") or {}).get("number")
    if stated is None or linked is None or stated == linked:
        return
    en, zh = mismatch_reasons(linked, stated)
    online.setdefault("checks", []).append({"name": "qr_link", "passed": False, "reason": {"en": en, "zh": zh}})
    online["good"] = False


def cmd_verify(args: argparse.Namespace, settings: Settings | None) -> int:
    if not args.bundle and not args.online:
        raise InvalidInput("give --bundle FILE (offline), --online URL, or both")
    kind, payload = _read_target(args.target)
    results: dict[str, Any] = {"kind": kind}
    if args.bundle:
        results["offline"] = _offline(kind, payload, args)
    if args.online:
        results["online"] = _online(kind, payload, args.online)
    if kind == "qr" and "online" in results:
        _link_against_payload(str(payload), results["online"])
    final = results.get("online") or results["offline"]
    offline_ok = "offline" not in results or results["offline"]["good"]
    results["good"] = bool(final.get("good")) and offline_ok
    if getattr(args, "json", False):
        print(json.dumps(results, ensure_ascii=False))
    else:
        print("\n".join(_text(results[mode], mode) for mode in ("offline", "online") if mode in results))
    return 0 if results["good"] else 1


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", help="a PDF file, a file holding the QR text, or the QR text itself")
    parser.add_argument("--bundle", help="trust bundle JSON (GET /api/v1/trust-bundle) for offline checks")
    parser.add_argument("--root", help="our root certificate (PEM) to pin the bundle to")
    parser.add_argument("--online", metavar="URL", help="also ask the service for the live status (base URL)")
    parser.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="machine-readable output")
    parser.add_argument("--deadline", type=float, default=10.0, metavar="SECONDS",
                        help="stop checking a PDF outside our seal profile after this long (it is then refused)")
    parser.set_defaults(func=cmd_verify)


def register(sub: Any) -> None:
    _arguments(sub.add_parser("verify", help="verify a sealed PDF or a scanned QR string (offline from a trust bundle, or online)"))


def main(argv: Sequence[str] | None = None, *, prog: str = "ecert-verify") -> int:
    """``python -m ecert.commands.verify`` (and ``ecert verify``): the command without loading ecert's settings (fast start on terminals)."""
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    _arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR, format="%(name)s: %(message)s")  # pyHanko's warnings are findings, not news
    try:
        return cmd_verify(args, None)
    except EcertError as exc:
        print(f"{prog}: {exc.detail}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
