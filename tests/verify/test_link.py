"""Verification by link: every status in plain words, history, successor link, transparency proof."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

from starlette.responses import JSONResponse

from ecert.container import Container
from verify.link import LinkVerifier
from verify.model import Outcome, Verdict, VerdictJson
from tests.verify.conftest import Issued


def test_valid(link_verifier: LinkVerifier, issued: Issued) -> None:
    verdict = link_verifier.verify(issued.token("valid"))
    assert verdict.outcome is Outcome.VALID and not verdict.failed
    assert verdict.licence is not None and verdict.licence.number == issued.licences["valid"].number
    assert verdict.licence.holder["name"] == issued.licences["valid"].holder_name  # BUSINESS_TYPE shows names in full
    assert verdict.transparency is not None and verdict.transparency.logged, verdict.transparency


def test_revoked_with_reason_and_history(link_verifier: LinkVerifier, issued: Issued) -> None:
    verdict = link_verifier.verify(issued.token("revoked"))
    assert verdict.outcome is Outcome.REVOKED
    assert verdict.failed[0].name == "status" and "违法经营" in verdict.failed[0].reason_zh
    assert [h.to_status for h in verdict.history] == ["valid", "revoked"]
    assert verdict.licence and verdict.licence.status_effective_at is not None


def test_suspended_expired_superseded(link_verifier: LinkVerifier, issued: Issued) -> None:
    assert link_verifier.verify(issued.token("suspended")).outcome is Outcome.SUSPENDED
    assert link_verifier.verify(issued.token("expired")).outcome is Outcome.EXPIRED
    old = link_verifier.verify(issued.token("old"))
    assert old.outcome is Outcome.SUPERSEDED
    assert old.licence and old.licence.superseded_by and old.licence.superseded_by.endswith(f"/v/{issued.token('current')}")
    current = link_verifier.verify(issued.token("current"))
    assert current.outcome is Outcome.VALID and current.licence and current.licence.supersedes_number == issued.licences["old"].number


def test_unknown_and_malformed_tokens_are_not_found(link_verifier: LinkVerifier) -> None:
    for token in ("A" * 24, "x", "../../etc/passwd", "' OR 1=1 --", "é" * 20):
        verdict = link_verifier.verify(token)
        assert verdict.outcome is Outcome.NOT_FOUND and verdict.licence is None


def test_verifications_are_counted_in_aggregate(link_verifier: LinkVerifier, issued: Issued, runtime) -> None:  # type: ignore[no-untyped-def]
    import datetime as dt

    from audit.stats import daily_counts
    from sqlmodel import Session

    link_verifier.counter.flush()
    for _ in range(3):
        link_verifier.verify(issued.token("valid"))
    assert link_verifier.counter.flush() == 3
    today = runtime.clock.now().date()
    with Session(runtime.engine) as session:
        rows = daily_counts(session, start=today - dt.timedelta(days=1), end=today + dt.timedelta(days=1),
                            departments=[issued.department], metric_prefix="verify.link")
    assert sum(r.count for r in rows if r.dimension == "valid") >= 3


def test_a_status_change_shows_at_once(link_verifier: LinkVerifier, runtime, uid, container: Container) -> None:  # type: ignore[no-untyped-def]
    """Verdicts are remembered per record version: a change is visible on the very next lookup."""
    import datetime as dt
    from certificates.lifecycle import Action
    from certificates import records
    from ecert.clock import SystemClock
    from ecert.db import session_scope
    from tests.verify.conftest import issue_for, new_department

    authority = container.ca
    from signing.sealer import PadesSealer

    code = new_department(runtime, authority)
    [licence] = issue_for(runtime, authority, PadesSealer(runtime.keystore, authority, authority, authority), code)
    assert link_verifier.verify(licence.token, with_proof=False).outcome is Outcome.VALID
    assert link_verifier.verify(licence.token, with_proof=False).outcome is Outcome.VALID  # remembered
    from certificates.issuance import Actor

    with session_scope(runtime.engine) as session:
        records.change_status(session, Actor("client:t", code), licence.id, Action.SUSPEND, reason="检查", effective_at=None,
                              clock=SystemClock())
    again = link_verifier.verify(licence.token, with_proof=False)
    assert again.outcome is Outcome.SUSPENDED and again.checked_at >= dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=5)


def test_answers_carry_the_json_of_their_verdict(link_verifier: LinkVerifier, issued: Issued) -> None:
    """A body is encoded once per verdict and only checked_at is spliced in: the bytes a JSONResponse would render of
    the verdict built afresh, and the verdict decodes from it unchanged."""
    names = ["valid", "revoked", "old", "current"]
    for _ in range(2):  # built, then remembered
        for name, answer in zip(names + [None], link_verifier.answers([issued.token(n) for n in names] + ["E" * 24])):
            verdict = answer.verdict()
            assert answer.body == JSONResponse(verdict.to_json()).body and answer.outcome is verdict.outcome
            if name is not None:
                fresh = link_verifier.verdict_for(issued.licences[name], now=verdict.checked_at)
                # a remembered proof may be against an older signed tree head (still valid as the log grows, when
                # other tests issued licences and signed a head meanwhile): the same leaf, everything else equal
                assert dataclasses.replace(verdict, transparency=None) == dataclasses.replace(fresh, transparency=None)
                assert verdict.transparency and fresh.transparency
                assert verdict.transparency.leaf_hash == fresh.transparency.leaf_hash
    verdict = link_verifier.verify(issued.token("valid"))
    assert verdict.licence is not None
    odd = dataclasses.replace(verdict, licence=dataclasses.replace(verdict.licence, holder={"name": '"引号" \\ </script>'}))
    later = dt.datetime(2031, 2, 3, 4, 5, 6, 789, tzinfo=dt.timezone.utc)
    assert VerdictJson.of(odd).at(later) == JSONResponse(dataclasses.replace(odd, checked_at=later).to_json()).body


def test_a_verdict_decodes_from_its_json(link_verifier: LinkVerifier, issued: Issued) -> None:
    verdicts = [link_verifier.verify(issued.token(name)) for name in ("valid", "revoked", "suspended", "old")]
    offline = dataclasses.replace(verdicts[0], outcome=Outcome.AUTHENTIC, mode="offline", bundle_age_seconds=12.5,
                                  bundle_stale=False, transparency=None)
    for verdict in [*verdicts, offline, link_verifier.verify("F" * 24)]:
        assert Verdict.from_json(json.loads(json.dumps(verdict.to_json()))) == verdict
