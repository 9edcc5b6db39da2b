"""OpenAPI-driven fuzzing (schemathesis) of the running service with a platform-admin token: no 5xx anywhere.

Every operation in /openapi.json gets generated paths, queries, headers and bodies, schema-valid and schema-invalid
(positive and negative generation). A 5xx, a 503 included, is a failure. ``ECERT_FUZZ_EXAMPLES`` sets the examples
per operation and mode (default 10).
"""

from __future__ import annotations

import os
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from ecert.runtime import Runtime
from tests.identity.conftest import bearer, new_client, token_for

pytestmark = pytest.mark.slow
EXAMPLES = int(os.environ.get("ECERT_FUZZ_EXAMPLES", "10"))


@schemathesis.serializer("application/pkcs10", "application/pdf", "application/ocsp-request",
                         "application/timestamp-query", "application/octet-stream", "application/x-pem-file")
def _raw(ctx: Any, value: Any) -> bytes:
    """Binary bodies: whatever was generated, as bytes (garbage DER, PEM or PDF is the point)."""
    return value if isinstance(value, bytes) else str(value).encode()


def test_no_server_errors_on_any_operation(client: Any, runtime: Runtime, live_url: str) -> None:
    schema = schemathesis.openapi.from_dict(httpx.get(f"{live_url}/openapi.json").json())
    admin = bearer(token_for(client, new_client(runtime, None, ["platform:admin"], name="fuzzer")))
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 50

    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            @settings(max_examples=EXAMPLES, deadline=None, database=None,
                      suppress_health_check=list(HealthCheck))
            @given(operation.as_strategy(mode))
            def fuzz(case: Any) -> None:
                response = case.call(base_url=live_url, headers={**(case.headers or {}), **admin}, timeout=60)
                if response.status_code >= 500:
                    failures.append(f"{case.method} {case.formatted_path} {mode.value}: {response.status_code} "  # noqa: B023 - fuzz() runs within this iteration
                                    f"{response.text[:200]}\n  {case.as_curl_command()[:400]}")

            try:
                fuzz()
            except Unsatisfiable:  # nothing to make invalid (no parameters, no body)
                assert mode is GenerationMode.NEGATIVE
    assert not failures, "\n".join(failures[:20])
