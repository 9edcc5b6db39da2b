"""First-sight lookups queued on the event loop are read in batches, each lookup getting its own verdict."""

from __future__ import annotations

import asyncio

from verify.batching import LookupBatcher
from verify.link import LinkVerifier
from verify.model import Outcome
from tests.verify.conftest import Issued


def test_concurrent_lookups_share_reads_and_keep_their_answers(link_verifier: LinkVerifier, issued: Issued) -> None:
    batches: list[int] = []
    read = link_verifier.verify_many

    def counted(tokens: list[str], **kwargs: bool) -> list:  # type: ignore[type-arg]
        batches.append(len(tokens))
        return read(tokens, **kwargs)

    link_verifier.verify_many = counted  # type: ignore[method-assign]
    try:
        batcher = LookupBatcher(link_verifier, readers=1)
        expected = {issued.token("valid"): Outcome.VALID, issued.token("revoked"): Outcome.REVOKED,
                    issued.token("suspended"): Outcome.SUSPENDED, "f" * 32: Outcome.NOT_FOUND, "bad token": Outcome.NOT_FOUND}
        asked = [token for _ in range(8) for token in expected]

        async def all_at_once() -> list[Outcome]:
            return [v.outcome for v in await asyncio.gather(*(batcher.verify(t) for t in asked))]

        assert asyncio.run(all_at_once()) == [expected[t] for t in asked]
        assert sum(batches) == len(asked) and max(batches) > 1  # later lookups waited for one read, together
        assert asyncio.run(batcher.verify(issued.token("valid"))).outcome is Outcome.VALID  # a new loop, a lone lookup
        assert batches[-1] == 1
    finally:
        del link_verifier.verify_many
