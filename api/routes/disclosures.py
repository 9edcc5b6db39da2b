"""Who checked my licences, and my standing consents: the holder's portal pages and the app's read.

``/portal/checks`` lists the holder's access log (newest first, 20 a page): counter staff, department
clients and platform apps that were shown one of their licences, with the declared purpose and what
was disclosed. ``/portal/consents`` lists the apps the holder lets read their licences, with a revoke
button (a same-origin POST under the SameSite=Lax session cookie, like every portal form).
``GET /api/v1/me/licences`` is the platform app's read under a live ``licences:own`` consent.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response

from api.deps import RuntimeDep, SessionDep
from api.problems import register_problem_type
from api.routes.portal import portal_session
from api.security import BearerRequired, Principal, require_scopes
from api.web import TEXT, render, see_other
from certificates import access_log
from ecert.errors import Forbidden
from identity import accounts, consents, oidc

__all__ = ["router", "PAGE_SIZE"]

for _error in (consents.ConsentRequired, consents.UnknownConsent):
    register_problem_type(_error.slug, _error.title, (_error.__doc__ or _error.title).strip())

PAGE_SIZE = 20
# This module's page texts (zh, en), added to the portal's table (a key another page already uses is an error).
_TEXTS: dict[str, tuple[str, str]] = {
    "checks": ("谁查看了我的证照", "Who checked my licences"),
    "checks_help": ("窗口工作人员、部门系统和经您授权的应用每次查看您的证照都会记录在这里。匿名扫码核验只计数，不记录身份。",
                    "Every time counter staff, a department's system or an app you authorised is shown one of your "
                    "licences, it is recorded here. Anonymous QR checks are only counted, not tied to anyone."),
    "no_checks": ("暂无记录", "Nothing recorded yet"),
    "when": ("时间", "When"),
    "checker": ("查看方", "Checked by"),
    "purpose": ("用途", "Purpose"),
    "disclosed": ("显示的内容", "What was shown"),
    "kind_staff": ("窗口工作人员", "Counter staff"),
    "kind_department": ("部门系统", "Department system"),
    "kind_app": ("应用", "App"),
    "shown_full": ("完整", "in full"),
    "shown_masked": ("部分隐藏", "masked"),
    "shown_hidden": ("未显示", "not shown"),
    "holder_name": ("姓名", "Name"),
    "holder_idno": ("证件号码", "ID number"),
    "core_fields": ("证照编号、类型、状态、有效期", "Number, type, status, validity"),
    "newer": ("较新", "Newer"),
    "older": ("较早", "Older"),
    "consents": ("我的授权", "My consents"),
    "consents_help": ("以下应用可以读取您的电子证照。撤销后立即失效，应用须重新征得您的同意。",
                      "These apps may read your e-licences. Revoking takes effect at once; the app must ask you again."),
    "no_consents": ("暂无授权", "No consents"),
    "granted": ("授权于", "Granted"),
    "revoked": ("已撤销", "Revoked"),
    "revoke_consent": ("撤销授权", "Revoke"),
    "scopes": ("权限", "Permissions"),
    "consent_title": ("授权确认", "Allow access?"),
    "consent_ask": ("请求以下权限：", "asks for:"),
    "consent_purpose": ("用途", "Purpose"),
    "consent_note": ("您可以随时在“我的授权”中撤销。应用只能看到证照类型允许公开的内容。",
                     "You can revoke this at any time under My consents. The app sees only what each licence type discloses."),
    "allow": ("同意", "Allow"),
    "deny": ("拒绝", "Deny"),
    "scope_openid": ("登录（身份令牌）", "Sign you in (an ID token)"),
    "scope_profile": ("姓名、账户类型和认证等级", "Your name, account kind and assurance level"),
    "scope_licences:own": ("读取您本人的电子证照", "Read your own e-licences"),
    **{"purpose_" + code: words for code, words in access_log.PURPOSES.items()},
    **{"channel_" + code: words for code, words in access_log.CHANNELS.items()},
}
for _key, _words in _TEXTS.items():
    if TEXT.setdefault(_key, _words) != _words:
        raise RuntimeError(f"page text {_key!r} is defined twice")

router = APIRouter(include_in_schema=False)
api_router = APIRouter(tags=["identity"])
LicenceReader = Annotated[Principal, Depends(require_scopes(consents.LICENCES_SCOPE))]


@router.get("/portal/checks")
def checks_page(request: Request, session: SessionDep, runtime: RuntimeDep,
                page: Annotated[int, Query(ge=1, le=100_000)] = 1) -> Response:
    """The holder's own access log; the query is by their account's blind index, so never anyone else's rows."""
    current = portal_session(request, session, runtime)
    if current is None:
        return see_other("/portal/login?next=/portal/checks")
    row = accounts.get_account(session, current.account_id)
    found = access_log.history_for_holder(session, holder_kind=accounts.holder_kind(row), holder_index=row.id_index, limit=PAGE_SIZE + 1,
                                          offset=(page - 1) * PAGE_SIZE)
    return render(request, "checks.html", entries=found[:PAGE_SIZE], page=page, more=len(found) > PAGE_SIZE)


@router.get("/portal/consents")
def consents_page(request: Request, session: SessionDep, runtime: RuntimeDep) -> Response:
    current = portal_session(request, session, runtime)
    if current is None:
        return see_other("/portal/login?next=/portal/consents")
    return render(request, "consents.html", consents=consents.list_for_account(session, current.account_id))


@router.post("/portal/consents/{consent_id}/revoke")
def revoke_consent(request: Request, session: SessionDep, runtime: RuntimeDep, consent_id: str) -> Response:
    current = portal_session(request, session, runtime)
    if current is None:
        return see_other("/portal/login?next=/portal/consents")
    try:
        consents.revoke(session, account_id=current.account_id, consent_id=consent_id[:32], now=runtime.clock.now())
    except consents.UnknownConsent as exc:
        return render(request, "message.html", status_code=404, detail=exc.detail)
    return see_other("/portal/consents")


@api_router.get("/api/v1/me/licences", summary="The signed-in holder's e-licences, for a platform app they consented to")
def my_licences(caller: LicenceReader, session: SessionDep, runtime: RuntimeDep) -> JSONResponse:
    """Needs a person's token (OpenID Connect, scope ``licences:own``) and their live consent; 403 once revoked."""
    if caller.kind != "person":
        raise Forbidden("this reads a holder's own licences: use the holder's token from the OpenID Connect flow")
    if oidc.is_revoked(session, caller.token_id):
        raise BearerRequired("the access token was revoked")
    items = consents.read_licences(session, account_id=caller.subject, client_id=caller.client_id, now=runtime.clock.now())
    return JSONResponse({"items": items}, headers={"Cache-Control": "no-store"})
