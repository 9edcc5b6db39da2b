"""The statistics dashboard: one self-contained HTML page with inline SVG charts (no scripts, no CDN).

:func:`render_dashboard` is a pure function of counter rows (:mod:`audit.stats`), so the same page
is written by ``ecert stats dashboard`` and can be served by the API behind department-scoped
access. Colours are a colour-blind-safe palette; every chart has a text title and table fallback.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Sequence
from html import escape

from audit.stats import DailyCount

__all__ = ["render_dashboard", "ISSUE", "REVOKE", "SUSPEND", "BAR_COLOUR"]

ISSUE = "certificates.licence.issue"
REVOKE = "certificates.licence.revoke"
SUSPEND = "certificates.licence.suspend"
BAR_COLOUR = "#0072b2"
_PALETTE = ("#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#f0e442", "#000000")
_KPIS = (("Issued", lambda m: m == ISSUE), ("Revoked", lambda m: m == REVOKE), ("Suspended", lambda m: m == SUSPEND),
         ("Verifications", lambda m: m.startswith("verify.")), ("Logins", lambda m: m.startswith("identity.login")))


def _fmt(n: int) -> str:
    return f"{n:,}"


def _daily_bars(rows: Sequence[DailyCount], start: dt.date, end: dt.date, metric: str, title: str) -> str:
    per_day: Counter[dt.date] = Counter()
    for r in rows:
        if r.metric == metric:
            per_day[r.day] += r.count
    days = [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]
    width, height, left, bottom = 880, 220, 48, 28
    peak = max(per_day.values(), default=0) or 1
    step = (width - left) / max(len(days), 1)
    bars = []
    for i, day in enumerate(days):
        h = (height - bottom - 10) * per_day[day] / peak
        x, y = left + i * step, height - bottom - h
        bars.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(step - 1, 1):.1f}" height="{h:.1f}" fill="{BAR_COLOUR}">'
                    f"<title>{day.isoformat()}: {_fmt(per_day[day])}</title></rect>")
    axis = (f'<line x1="{left}" y1="{height - bottom}" x2="{width}" y2="{height - bottom}" stroke="#555"/>'
            f'<text x="{left - 6}" y="16" text-anchor="end" class="tick">{_fmt(peak)}</text>'
            f'<text x="{left - 6}" y="{height - bottom}" text-anchor="end" class="tick">0</text>'
            f'<text x="{left}" y="{height - 8}" class="tick">{start.isoformat()}</text>'
            f'<text x="{width}" y="{height - 8}" text-anchor="end" class="tick">{end.isoformat()}</text>')
    return (f'<figure><figcaption>{escape(title)}</figcaption><svg viewBox="0 0 {width} {height}" role="img" '
            f'aria-label="{escape(title)}">{axis}{"".join(bars)}</svg></figure>')


def _ranked_bars(totals: dict[str, int], title: str) -> str:
    items = sorted(totals.items(), key=lambda kv: -kv[1])[:12]
    if not items:
        return f"<figure><figcaption>{escape(title)}</figcaption><p>No data.</p></figure>"
    peak = items[0][1] or 1
    row_h, width, label_w = 26, 880, 180
    bars = []
    for i, (label, value) in enumerate(items):
        w = (width - label_w - 90) * value / peak
        y = i * row_h
        bars.append(f'<text x="{label_w - 8}" y="{y + 17}" text-anchor="end">{escape(label or "(none)")}</text>'
                    f'<rect x="{label_w}" y="{y + 4}" width="{w:.1f}" height="{row_h - 8}" fill="{_PALETTE[i % len(_PALETTE)]}"/>'
                    f'<text x="{label_w + w + 6:.1f}" y="{y + 17}">{_fmt(value)}</text>')
    return (f'<figure><figcaption>{escape(title)}</figcaption><svg viewBox="0 0 {width} {row_h * len(items)}" '
            f'role="img" aria-label="{escape(title)}">{"".join(bars)}</svg></figure>')


def render_dashboard(rows: Sequence[DailyCount], *, title: str, start: dt.date, end: dt.date) -> str:
    """The page for ``rows`` (already limited to what the viewer may see) between ``start`` and ``end``."""
    by_metric: Counter[str] = Counter()
    by_type: Counter[str] = Counter()
    by_channel: Counter[str] = Counter()
    table: dict[tuple[str, str], int] = defaultdict(int)
    for r in rows:
        by_metric[r.metric] += r.count
        table[(r.metric, r.dimension)] += r.count
        if r.metric == ISSUE:
            by_type[r.dimension] += r.count
        if r.metric.startswith("verify."):
            by_channel[r.metric.removeprefix("verify.")] += r.count
    tiles = "".join(
        f'<div class="kpi"><span>{name}</span><strong>{_fmt(sum(v for m, v in by_metric.items() if match(m)))}</strong></div>'
        for name, match in _KPIS
    )
    rows_html = "".join(f"<tr><td>{escape(m)}</td><td>{escape(d or '-')}</td><td>{_fmt(n)}</td></tr>"
                        for (m, d), n in sorted(table.items()))
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>
<style>
body{{font-family:system-ui,"Noto Sans CJK SC",sans-serif;margin:24px;color:#1b1b1b;background:#fafafa}}
h1{{font-size:22px;margin:0 0 4px}} .period{{color:#555;margin-bottom:16px}}
.kpis{{display:flex;gap:12px;flex-wrap:wrap;margin-bottom:16px}}
.kpi{{background:#fff;border:1px solid #ddd;border-radius:8px;padding:12px 16px;min-width:140px}}
.kpi span{{display:block;color:#555;font-size:13px}} .kpi strong{{font-size:26px}}
figure{{background:#fff;border:1px solid #ddd;border-radius:8px;margin:0 0 16px;padding:12px}}
figcaption{{font-weight:600;margin-bottom:8px}} svg{{width:100%;height:auto;font-size:12px}} .tick{{fill:#555}}
table{{border-collapse:collapse;background:#fff}} td,th{{border:1px solid #ddd;padding:4px 8px;text-align:left}}
td:last-child{{text-align:right}}
</style></head><body>
<h1>{escape(title)}</h1><div class="period">{start.isoformat()} to {end.isoformat()}</div>
<div class="kpis">{tiles}</div>
{_daily_bars(rows, start, end, ISSUE, "Licences issued per day")}
{_ranked_bars(dict(by_type), "Issued by licence type")}
{_ranked_bars(dict(by_channel), "Verifications by channel")}
<figure><figcaption>All counts</figcaption><table><tr><th>metric</th><th>dimension</th><th>count</th></tr>{rows_html}</table></figure>
</body></html>
"""
