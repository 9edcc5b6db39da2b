"""OCSP and TSA requests from strangers: arbitrary bytes and mutated real requests always get a well-formed refusal."""

from __future__ import annotations

from asn1crypto import tsp
from cryptography.hazmat.primitives import hashes
from cryptography.x509 import ocsp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ca.service import CertificateAuthority
from ca.tsa import RejectionResponse

_RELAXED = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _mutations(valid: bytes) -> st.SearchStrategy[bytes]:
    flips = st.tuples(st.integers(0, len(valid) - 1), st.integers(0, 255)).map(
        lambda f: valid[:f[0]] + bytes([f[1]]) + valid[f[0] + 1:])
    cuts = st.integers(0, len(valid) - 1).map(lambda n: valid[:n])
    return st.one_of(st.binary(max_size=300), flips, cuts)


def _real_ocsp_request(authority: CertificateAuthority) -> bytes:
    hierarchy = authority.hierarchy()
    issuing, root = hierarchy.issuing.certificate, hierarchy.root.certificate
    return ocsp.OCSPRequestBuilder().add_certificate(issuing, root, hashes.SHA256()).build().public_bytes(
        __import__("cryptography.hazmat.primitives.serialization", fromlist=["Encoding"]).Encoding.DER)


def test_ocsp_answers_any_bytes_with_an_ocsp_response(authority: CertificateAuthority) -> None:
    @_RELAXED
    @given(_mutations(_real_ocsp_request(authority)))
    def check(request: bytes) -> None:
        response = ocsp.load_der_ocsp_response(authority.ocsp(request))
        assert response.response_status in set(ocsp.OCSPResponseStatus)

    check()


def test_tsa_answers_any_bytes_with_a_timestamp_response(authority: CertificateAuthority) -> None:
    valid = tsp.TimeStampReq({"version": 1, "message_imprint": {
        "hash_algorithm": {"algorithm": "sha256"}, "hashed_message": b"\x01" * 32}, "cert_req": True}).dump()

    @_RELAXED
    @given(_mutations(valid))
    def check(request: bytes) -> None:
        answer = authority.tsa_respond(request)
        status = RejectionResponse.load(answer)["status"]["status"].native
        if status == "granted":
            assert tsp.TimeStampResp.load(answer)["time_stamp_token"]["content_type"].native == "signed_data"
        else:
            assert status == "rejection"

    check()
