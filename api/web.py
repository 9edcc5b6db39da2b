"""Server-rendered pages (Jinja2, autoescaped): language choice, texts in zh/en, session cookies, QR as SVG.

Pages embed no scripts; forms post same-origin. The session cookie is HttpOnly and SameSite=Lax
(cross-site POSTs do not carry it, so forms need no extra CSRF token; top-level GETs such as an
OpenID Connect authorization request do), and Secure when ecert's public URL is https.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from certificates.lifecycle import STATUS_WORDS
from certificates.records import effective_status
from ecert.localtime import local_time
from signing.render import qr_matrix
from verify.page import pick_language

__all__ = ["render", "lang_of", "SESSION_COOKIE", "STAFF_COOKIE", "set_cookie", "qr_svg", "safe_next", "see_other"]

SESSION_COOKIE = "ecert_session"
STAFF_COOKIE = "ecert_staff"
_HERE = Path(__file__).resolve().parent
_env = Environment(loader=FileSystemLoader(_HERE / "templates"), autoescape=select_autoescape(["html"]))
_CSS = (_HERE / "static" / "portal.css").read_text()

TEXT: dict[str, tuple[str, str]] = {
    "portal": ("统一身份认证", "Identity portal"),
    "counter": ("窗口服务台", "Counter console"),
    "register": ("注册", "Register"),
    "login": ("登录", "Log in"),
    "logout": ("退出", "Log out"),
    "person": ("个人", "Person"),
    "enterprise": ("法人", "Enterprise"),
    "name": ("姓名 / 名称", "Name"),
    "id_number": ("身份证号 / 统一社会信用代码", "ID number / credit code"),
    "login_name": ("身份证号、信用代码或手机号", "ID number, credit code or phone"),
    "legal_rep": ("法定代表人", "Legal representative"),
    "phone": ("手机号", "Phone"),
    "password": ("密码（至少10位）", "Password (10+ characters)"),
    "code": ("动态验证码或恢复码", "Authenticator or recovery code"),
    "continue": ("继续", "Continue"),
    "my_account": ("我的账户", "My account"),
    "assurance": ("认证等级", "Assurance"),
    "totp": ("双因素认证", "Two-factor authentication"),
    "totp_on": ("已开启", "On"),
    "totp_enrol": ("开启双因素认证", "Turn on two-factor authentication"),
    "totp_scan": ("用验证器应用扫描二维码，或输入密钥，然后输入6位验证码。",
                  "Scan the code with an authenticator app, or type the key, then enter the 6-digit code."),
    "recovery": ("恢复码（每个只能用一次，请妥善保存，只显示这一次）",
                 "Recovery codes (each works once; keep them safe, shown only now)"),
    "licences": ("我的电子证照", "My e-licences"),
    "no_licences": ("暂无电子证照", "No e-licences yet"),
    "applicant_licences": ("申请人的电子证照（仅限本次办理）", "The applicant's e-licences (this visit only)"),
    "download": ("下载", "Download"),
    "share": ("分享核验链接", "Share verification link"),
    "my_qr": ("我的身份码", "My identity QR"),
    "qr_help": ("在服务大厅窗口出示此码。有效期2分钟，只能使用一次。",
                "Show this at a service-hall counter. Valid 2 minutes, usable once."),
    "refresh": ("刷新", "Refresh"),
    "sessions": ("登录设备", "Sessions"),
    "revoke": ("下线", "Revoke"),
    "this_session": ("当前", "this one"),
    "history": ("登录记录", "Login history"),
    "other_lang": ("English", "中文"),
    "staff_login": ("工作人员登录", "Staff log in"),
    "username": ("用户名", "Username"),
    "hall": ("服务大厅", "Service hall"),
    "scan": ("扫描或粘贴申请人身份码", "Scan or paste the applicant's QR"),
    "check": ("核验", "Check"),
    "applicant": ("申请人", "Applicant"),
    "in_person": ("现场核验身份证件", "In-person ID document check"),
    "doc_type": ("证件类型", "Document type"),
    "doc_number": ("证件号码", "Document number"),
    "record_check": ("记录核验", "Record the check"),
    "consent": ("申请人同意本次办理调阅其电子证照", "The applicant consents to this visit reading their e-licences"),
    "view_licences": ("调阅电子证照", "View e-licences"),
    "visit": ("本次办理", "This visit"),
    "end_visit": ("结束办理", "End the visit"),
    "find_by_id": ("无手机：按证件号查找账户", "No phone: find the account by document number"),
    "error": ("出错了", "Something is wrong"),
    "authorize": ("授权登录", "Sign in to"),
    "share_licences": ("出示并同意窗口调阅我的电子证照", "Show, and let the counter read my e-licences"),
    "visit_acr": ("身份认证方式", "Authenticated by"),
    "consented": ("申请人已同意", "Applicant consented"),
    "licence_no": ("证照编号", "Licence number"),
    "status": ("状态", "Status"),
    "valid_until": ("有效期至", "Valid until"),
    "agents": ("经办人", "Authorised agents"),
    "agents_help": ("经办人可以代表本企业查看和下载本企业的电子证照。移除后立即失效。",
                    "Agents can view and download this enterprise's e-licences for it. Removing one takes effect at once."),
    "no_agents": ("暂无经办人", "No agents yet"),
    "add_agent": ("添加经办人", "Add an agent"),
    "agent_ref": ("经办人的身份证号或账户号（acc_…，须已注册）", "The person's ID number or account id (acc_…, registered)"),
    "remove": ("移除", "Remove"),
    "added": ("添加于", "Added"),
    "acting": ("我代办的企业", "Enterprises I act for"),
    "no_acting": ("您目前不是任何企业的经办人", "You do not act for any enterprise"),
    "enterprise_licences": ("企业电子证照（只读）", "The enterprise's e-licences (read-only)"),
    "busy": ("登录人数过多，系统繁忙，请 {n} 秒后重试。", "Many people are logging in right now; please try again in {n} s."),
}


def lang_of(request: Request) -> str:
    return pick_language(request.query_params.get("lang") or request.cookies.get("lang"), request.headers.get("accept-language"))


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    lang = lang_of(request)

    def t(key: str) -> str:
        zh, en = TEXT[key]
        return zh if lang == "zh" else en

    def status_word(licence: Any) -> str:
        """A licence's status as of now (expired once past valid_until, before any sweep), in the page's language."""
        zh, en = STATUS_WORDS[effective_status(licence, request.app.state.runtime.clock.now())]
        return zh if lang == "zh" else en

    other = "en" if lang == "zh" else "zh"
    body = _env.get_template(template).render(t=t, lang=lang, other=other, css=Markup(_CSS), request=request,
                                              when=local_time(), status_word=status_word, **context)
    response = HTMLResponse(body, status_code=status_code, headers={
        "Cache-Control": "no-store", "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
        "img-src 'self' data:; form-action 'self' http: https:; frame-ancestors 'none'", "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer"})
    if request.query_params.get("lang") in ("zh", "en"):
        response.set_cookie("lang", lang, samesite="lax", max_age=365 * 86400)
    return response


def set_cookie(request: Request, response: Response, name: str, value: str | None, *, max_age: int = 12 * 3600) -> None:
    secure = request.app.state.runtime.settings.public_url.startswith("https:")
    if value is None:
        response.delete_cookie(name, path="/", httponly=True, samesite="lax", secure=secure)
    else:
        response.set_cookie(name, value, max_age=max_age, path="/", httponly=True, samesite="lax", secure=secure)


def safe_next(value: str | None, default: str) -> str:
    """A local path to go back to (never another site: no scheme, no //, no backslash)."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value and "\n" not in value:
        return value
    return default


def see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def qr_svg(text: str, *, size: int = 240) -> Markup:
    """The QR code of ``text`` as inline SVG (one path; 4-module quiet zone)."""
    matrix = qr_matrix(text)
    n = matrix.size + 8
    path = "".join(f"M{column + 4} {row + 4}h{length}v1h-{length}z" for row, column, length in matrix.runs)
    return Markup(
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {n} {n}" width="{size}" height="{size}" '
        f'shape-rendering="crispEdges" role="img"><rect width="{n}" height="{n}" fill="#fff"/>'
        f'<path d="{path}" fill="#000"/></svg>'
    )
