"""Public status lists: every licence's legal status, signed and compressed, for offline verifiers."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Path, Response
from sqlmodel import col, select

from api.deps import RuntimeDep, SessionDep
from api.problems import register_problem_type
from certificates.models import StatusList
from certificates.statuslist import TOKEN_TYPE, UnknownStatusList, current_token

router = APIRouter(prefix="/status-lists", tags=["verification"])
register_problem_type(UnknownStatusList.slug, UnknownStatusList.title, (UnknownStatusList.__doc__ or "").strip())

TTL = dt.timedelta(minutes=5)


@router.get("", summary="The status lists and where to fetch them")
def index(session: SessionDep, runtime: RuntimeDep) -> dict[str, Any]:
    base = runtime.settings.public_url.rstrip("/")
    rows = session.exec(select(StatusList).order_by(col(StatusList.id))).all()
    return {"lists": [{"id": r.id, "url": f"{base}/status-lists/{r.id}", "size": r.size, "bits": r.bits} for r in rows],
            "ttl": int(TTL.total_seconds())}


@router.get("/{list_id}", summary="One signed status list (application/statuslist+jwt)", response_class=Response)
def one(list_id: Annotated[int, Path(ge=0, le=2**63 - 1)], session: SessionDep, runtime: RuntimeDep) -> Response:
    token = current_token(session, runtime.keystore, list_id, public_url=runtime.settings.public_url,
                          now=runtime.clock.now(), ttl=TTL)
    age = int((runtime.clock.now() - token.issued_at).total_seconds())
    return Response(token.token, media_type=f"application/{TOKEN_TYPE}",
                    headers={"Cache-Control": f"public, max-age={max(0, int(TTL.total_seconds()) - age)}"})
