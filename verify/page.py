"""The public verification page (``/v/{token}``): one self-contained HTML document, no scripts.

Mobile first (one column, large verdict banner, readable at 390 px), Chinese or English. Every
value is HTML-escaped; the page embeds its CSS so it works under a strict Content-Security-Policy.
"""

from __future__ import annotations

import datetime as dt
from html import escape
from typing import Any

from ecert.localtime import local_time
from verify.model import Outcome, Verdict

__all__ = ["render_page", "render_form", "pick_language", "LANGUAGES", "FORM_ERRORS"]

LANGUAGES = ("zh", "en")

_TEXT: dict[str, tuple[str, str]] = {
    "title": ("电子证照核验", "E-licence verification"),
    "number": ("证照编号", "Licence number"),
    "type": ("证照类型", "Licence type"),
    "issuer": ("发证部门", "Issued by"),
    "holder": ("持证主体", "Holder"),
    "validity": ("有效期", "Valid"),
    "status": ("当前状态", "Status"),
    "reason": ("原因", "Reason"),
    "since": ("生效日期", "Since"),
    "no_end": ("长期", "no end date"),
    "current": ("查看现行版本", "See the current version"),
    "replaces": ("替代证照", "Replaces"),
    "history": ("状态变更记录", "Status history"),
    "checks": ("核验项目", "Checks"),
    "log": ("公开透明日志", "Transparency log"),
    "logged": ("已记入公开日志（第 {index} 条，日志规模 {size}）", "Recorded in the public log (entry {index} of {size})"),
    "not_logged": ("尚未记入已签名的公开日志", "Not yet in a signed tree head of the public log"),
    "checked": ("核验时间", "Checked at"),
    "other_lang": ("English", "中文"),
    "form_intro": ("上传电子证照 PDF，或粘贴扫描二维码所得的内容，即可核验其真伪和当前状态。",
                   "Upload an e-licence PDF, or paste what scanning its QR code gave you, to check that it is genuine and in force."),
    "form_pdf": ("电子证照 PDF 文件", "E-licence PDF file"),
    "form_qr": ("或：二维码内容（链接）", "Or: the QR code's content (the link)"),
    "form_submit": ("核验", "Verify"),
    "form_private": ("文件仅用于本次核验，不会被保存。", "The file is used for this check only and is not kept."),
    "again": ("再核验一份", "Verify another"),
    "not_found_help": ("请确认链接完整，或联系发证部门。伪造的证照同样会显示此结果。",
                       "Check that the link is complete, or contact the issuing department. Forged licences show this too."),
}
_ACTIONS: dict[str, tuple[str, str]] = {
    "issue": ("签发", "Issued"), "suspend": ("暂停", "Suspended"), "reinstate": ("恢复", "Reinstated"),
    "revoke": ("吊销", "Revoked"), "cancel": ("注销", "Cancelled"), "expire": ("到期", "Expired"),
    "transfer": ("迁出", "Transferred"), "withdraw": ("撤销", "Withdrawn"), "supersede": ("被替代", "Superseded"),
    "mark-other": ("其他", "Other"), "import": ("签发（历史证照补录）", "Issued (recorded as a historical licence)"),
}
_TONE = {Outcome.VALID: "good", Outcome.AUTHENTIC: "good", Outcome.SUSPENDED: "warn", Outcome.EXPIRED: "warn",
         Outcome.SUPERSEDED: "warn", Outcome.NOT_FOUND: "none"}
_ICON = {"good": "✔", "warn": "!", "bad": "✖", "none": "?"}

_CSS = """
*{box-sizing:border-box}body{margin:0;font:16px/1.5 system-ui,-apple-system,"PingFang SC","Noto Sans CJK SC",
"Microsoft YaHei",sans-serif;background:#f3f4f6;color:#111827}main{max-width:640px;margin:0 auto;padding:16px}
header{display:flex;justify-content:space-between;align-items:center;margin-bottom:12px}h1{font-size:18px;margin:0}
header a{color:#1d4ed8;font-size:14px}.banner{border-radius:14px;padding:20px 18px;color:#fff;margin-bottom:16px}
.banner .icon{font-size:40px;line-height:1;font-weight:700}.banner .word{font-size:28px;font-weight:700;margin-top:6px}
.banner p{margin:6px 0 0;font-size:15px;opacity:.95}.good{background:#15803d}.warn{background:#b45309}
.bad{background:#b91c1c}.none{background:#4b5563}section{background:#fff;border-radius:12px;padding:14px 16px;
margin-bottom:12px}h2{font-size:15px;margin:0 0 8px;color:#374151}dl{margin:0;display:grid;grid-template-columns:
minmax(90px,35%) 1fr;gap:6px 10px}dt{color:#6b7280}dd{margin:0;word-break:break-all}ol,ul{margin:0;padding-left:20px}
li{margin:4px 0}.pass{color:#15803d}.fail{color:#b91c1c}.link{display:block;margin-top:10px;font-weight:600;
color:#1d4ed8}footer{color:#6b7280;font-size:13px;text-align:center;margin:16px 0}
"""


def pick_language(query: str | None, accept_language: str | None) -> str:
    """``?lang=`` wins; else the Accept-Language entry with the highest q among zh and en; else zh."""
    if query in LANGUAGES:
        return query
    best, best_q = "zh", -1.0
    for part in (accept_language or "").split(","):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        primary = tag.strip().lower().split("-")[0]
        if primary in LANGUAGES and q > best_q:
            best, best_q = primary, q
    return best


def _t(key: str, lang: str, **values: Any) -> str:
    zh, en = _TEXT[key]
    return escape((zh if lang == "zh" else en).format(**values))


def _date(value: dt.datetime | None) -> str:
    return local_time().day(value) if value else ""  # the day in the deployment's zone, as the PDF prints it


def _row(label: str, value: str) -> str:
    return f"<dt>{label}</dt><dd>{value}</dd>" if value else ""


def _licence(verdict: Verdict, lang: str) -> str:
    lic = verdict.licence
    if lic is None:
        return ""
    type_name = (lic.type_name_zh if lang == "zh" else lic.type_name_en) or lic.type_code
    holder = lic.holder.get("name", "")
    if "id_number" in lic.holder:
        holder = f"{holder} ({lic.holder['id_number']})"
    until = _date(lic.valid_until) or _t("no_end", lang)
    status = (lic.status_zh if lang == "zh" else lic.status_en) or ""
    rows = [
        _row(_t("number", lang), escape(lic.number)), _row(_t("type", lang), escape(type_name)),
        _row(_t("issuer", lang), escape(f"{lic.issuer_name} ({lic.issuer})" if lic.issuer_name else lic.issuer)), _row(_t("holder", lang), escape(holder)),
        _row(_t("validity", lang), f"{escape(_date(lic.valid_from))} – {escape(until)}"),
        _row(_t("status", lang), escape(status)), _row(_t("reason", lang), escape(lic.status_reason or "")),
        _row(_t("since", lang), escape(_date(lic.status_effective_at))),
        _row(_t("replaces", lang), escape(lic.supersedes_number or "")),
    ]
    rows += [_row(escape(lic.field_labels.get(name, {}).get(lang, name)), escape(str(value))) for name, value in lic.fields.items()]
    link = (f'<a class="link" id="current-version" href="{escape(lic.superseded_by)}?lang={lang}">{_t("current", lang)} →</a>'
            if lic.superseded_by else "")
    return f'<section id="licence"><dl>{"".join(rows)}</dl>{link}</section>'


def _history(verdict: Verdict, lang: str) -> str:
    if not verdict.history:
        return ""
    items = []
    for entry in verdict.history:
        zh, en = _ACTIONS.get(entry.action, (entry.action, entry.action))
        reason = f" — {escape(entry.reason)}" if entry.reason else ""
        items.append(f"<li>{escape(_date(entry.effective_at))} {escape(zh if lang == 'zh' else en)}{reason}</li>")
    return f'<section id="history"><h2>{_t("history", lang)}</h2><ol>{"".join(items)}</ol></section>'


def _checks(verdict: Verdict, lang: str) -> str:
    items = [f'<li class="{"pass" if c.passed else "fail"}">{"✔" if c.passed else "✖"} '
             f'{escape(c.reason_zh if lang == "zh" else c.reason_en)}</li>' for c in verdict.checks]
    return f'<section id="checks"><h2>{_t("checks", lang)}</h2><ul>{"".join(items)}</ul></section>'


def _transparency(verdict: Verdict, lang: str) -> str:
    log = verdict.transparency
    if log is None or verdict.licence is None:
        return ""
    text = _t("logged", lang, index=(log.leaf_index or 0) + 1, size=log.tree_size) if log.logged else _t("not_logged", lang)
    return f'<section id="transparency"><h2>{_t("log", lang)}</h2><p>{text}</p></section>'


#: why a submitted form gets no verdict: code -> (zh, en)
FORM_ERRORS: dict[str, tuple[str, str]] = {
    "empty": ("请选择 PDF 文件或粘贴二维码内容。", "Choose a PDF file or paste the QR code's content."),
    "no_link": ("二维码内容中没有核验链接（…/v/…）。", "The QR content holds no verification link (…/v/…)."),
    "too_large": ("文件过大。", "The file is too large."),
    "busy": ("核验请求过多，请稍后再试。", "Too many checks from your address; please try again shortly."),
    "unreadable_form": ("无法读取提交的内容。", "The submitted form could not be read."),
}


def _head(lang: str, title: str) -> str:
    return (f'<!doctype html><html lang="{"zh-CN" if lang == "zh" else "en"}"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width,initial-scale=1"><meta name="robots" content="noindex">'
            f'<title>{escape(title)}</title><style>{_CSS}{_FORM_CSS}</style></head><body><main>')


_FORM_CSS = """
form label{display:block;font-weight:600;margin:12px 0 6px}form input[type=file],form textarea{width:100%;font:inherit;
padding:10px;border:1px solid #d1d5db;border-radius:10px;background:#fff}form textarea{min-height:84px}
form button{margin-top:16px;width:100%;padding:14px;font:inherit;font-size:18px;font-weight:700;color:#fff;
background:#1d4ed8;border:0;border-radius:12px}.error{background:#fee2e2;color:#991b1b;border-radius:10px;padding:10px 12px}
.hint{color:#4b5563;font-size:14px}a.again{display:block;text-align:center;margin:12px 0;color:#1d4ed8}
"""


def render_form(*, lang: str, self_path: str, error: str | None = None) -> str:
    """The page to upload a PDF or paste a QR payload (``/verify``): a plain form, no scripts."""
    other = "en" if lang == "zh" else "zh"
    problem = f'<p class="error" id="error">{_t(error, lang) if error in _TEXT else escape(_pick(FORM_ERRORS[error], lang))}</p>' \
        if error else ""
    return (
        f'{_head(lang, _t("title", lang))}'
        f'<header><h1>{_t("title", lang)}</h1><a href="{escape(self_path)}?lang={other}" hreflang="{other}">'
        f'{_t("other_lang", lang)}</a></header>{problem}'
        f'<section><p>{_t("form_intro", lang)}</p>'
        f'<form method="post" action="{escape(self_path)}?lang={lang}" enctype="multipart/form-data">'
        f'<label for="file">{_t("form_pdf", lang)}</label><input type="file" id="file" name="file" accept="application/pdf,.pdf">'
        f'<label for="qr">{_t("form_qr", lang)}</label><textarea id="qr" name="qr" maxlength="4096" autocomplete="off" '
        'spellcheck="false" placeholder="https://…/v/…"></textarea>'
        f'<button type="submit">{_t("form_submit", lang)}</button></form>'
        f'<p class="hint">{_t("form_private", lang)}</p></section></main></body></html>'
    )


def _pick(words: tuple[str, str], lang: str) -> str:
    return words[0] if lang == "zh" else words[1]


def render_page(verdict: Verdict, *, lang: str, self_path: str, again: str | None = None) -> str:
    """The whole page for one verdict; ``self_path`` is the page's own path (for the language switch)."""
    tone = _TONE.get(verdict.outcome, "bad")
    zh, en = verdict.words
    word = zh if lang == "zh" else en
    first = verdict.failed[0] if verdict.failed else (verdict.checks[-1] if verdict.checks else None)
    detail = escape((first.reason_zh if lang == "zh" else first.reason_en) if first else "")
    if verdict.outcome is Outcome.NOT_FOUND:
        detail = _t("not_found_help", lang)
    other = "en" if lang == "zh" else "zh"
    return (
        f'<!doctype html><html lang="{"zh-CN" if lang == "zh" else "en"}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1"><meta name="robots" content="noindex">'
        f'<title>{_t("title", lang)} – {escape(word)}</title><style>{_CSS}</style></head><body><main>'
        f'<header><h1>{_t("title", lang)}</h1><a href="{escape(self_path)}?lang={other}" hreflang="{other}">'
        f'{_t("other_lang", lang)}</a></header>'
        f'<div class="banner {tone}" id="verdict" data-outcome="{verdict.outcome.value}"><div class="icon">{_ICON[tone]}</div>'
        f'<div class="word">{escape(word)}</div><p>{detail}</p></div>'
        f'{_licence(verdict, lang)}{_history(verdict, lang)}{_transparency(verdict, lang)}'
        f'{_checks(verdict, lang) if verdict.outcome is not Outcome.NOT_FOUND else ""}'
        f'{_again(again, lang)}'
        f'<footer>{_t("checked", lang)} {escape(local_time().second(verdict.checked_at))}</footer>'
        '</main></body></html>'
    )


def _again(path: str | None, lang: str) -> str:
    return f'<a class="again" id="again" href="{escape(path)}?lang={lang}">{_t("again", lang)}</a>' if path else ""
