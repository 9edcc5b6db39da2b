"""First-sight lookups queued on the event loop are read in batches, each lookup getting its own answer."""

from __future__ import annotations

import asyncio
from pathlib import Path

import sqlalchemy as sa

from ecert.clock import SystemClock
from ecert.db import make_engine, migrate
from verify.batching import LookupBatcher
from verify.link import LinkVerifier, VerificationCounter
from verify.model import Outcome
from tests.verify.conftest import Issued


def test_concurrent_lookups_share_reads_and_keep_their_answers(link_verifier: LinkVerifier, issued: Issued) -> None:
    batches: list[int] = []
    read = link_verifier.answers

    def counted(tokens: list[str], **kwargs: bool) -> list:  # type: ignore[type-arg]
        batches.append(len(tokens))
        return read(tokens, **kwargs)

    link_verifier.answers = counted  # type: ignore[method-assign]
    try:
        batcher = LookupBatcher(link_verifier, readers=1)
        expected = {issued.token("valid"): Outcome.VALID, issued.token("revoked"): Outcome.REVOKED,
                    issued.token("suspended"): Outcome.SUSPENDED, "f" * 32: Outcome.NOT_FOUND, "bad token": Outcome.NOT_FOUND}
        asked = [token for _ in range(8) for token in expected]

        async def all_at_once() -> list[Outcome]:
            answers = await asyncio.gather(*(batcher.answer(t) for t in asked))
            for answer in answers:  # each body is its own verdict's JSON
                assert answer.verdict().outcome is answer.outcome
            return [a.outcome for a in answers]

        assert asyncio.run(all_at_once()) == [expected[t] for t in asked]
        assert sum(batches) == len(asked) and max(batches) > 1  # later lookups waited for one read, together
        assert asyncio.run(batcher.answer(issued.token("valid"))).outcome is Outcome.VALID  # a new loop, a lone lookup
        assert batches[-1] == 1
    finally:
        del link_verifier.answers


def test_a_failed_read_reaches_every_waiting_lookup_and_the_next_batch_reads_again(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'register.db'}")
    migrate(engine)
    verifier = LinkVerifier(engine, SystemClock(), public_url="https://ecert.example",
                            counter=VerificationCounter(engine, SystemClock(), every_seconds=3600))
    batcher = LookupBatcher(verifier, readers=1)

    async def lookups(n: int) -> list[object]:
        return await asyncio.gather(*(batcher.answer(f"{i:032x}") for i in range(n)), return_exceptions=True)

    engine.dispose()
    (tmp_path / "register.db").rename(tmp_path / "away.db")  # the register is gone: a new, empty database file
    failed = asyncio.run(lookups(6))
    assert all(isinstance(r, sa.exc.DBAPIError) for r in failed), failed  # the API answers these 503
    engine.dispose()
    (tmp_path / "away.db").replace(tmp_path / "register.db")
    assert all(getattr(a, "outcome", None) is Outcome.NOT_FOUND for a in asyncio.run(lookups(6)))
