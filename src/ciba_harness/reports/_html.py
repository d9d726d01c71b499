"""HTML building blocks shared by the reports: escaping, scrubbing, page shell, styles.

Everything a report shows goes through `esc()`, which HTML-escapes and, as a second line of
defence behind the redaction done upstream (`Exchange.to_dict()`), masks anything shaped
like an issued token: JWTs/JWEs and the credential of an `Authorization` scheme.
"""

from __future__ import annotations

import hashlib
import html
import os
import re
import time
from collections.abc import Iterable
from pathlib import Path

__all__ = [
    "VERDICT_ORDER",
    "anchor",
    "badge",
    "esc",
    "fmt_time",
    "page",
    "rich",
    "scrub",
    "write_atomic",
]

VERDICT_ORDER = ("fail", "error", "inconclusive", "warning", "pass", "skipped", "not_tested")
VERDICT_LABELS = {
    "fail": "fail",
    "error": "error",
    "inconclusive": "inconclusive",
    "warning": "warning",
    "pass": "pass",
    "skipped": "skipped",
    "not_tested": "not tested",
    "passed": "passed",
    "failed": "failed",
}
MASK = "***"

# A compact JWS (3 parts) or JWE (5 parts); the header always starts `eyJ` ('{"').
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{2,}(?:\.[A-Za-z0-9_-]*){2,4}")
# `Bearer <credential>`, `Basic <credential>`, `DPoP <credential>`: a credential has a digit
# or is long, so prose ("Basic authentication", "Bearer token") is left alone.
_AUTH_SCHEME = re.compile(
    r"\b(Bearer|Basic|DPoP|bearer|basic)(\s+)"
    r"(?!\*\*\*)(?:(?=[A-Za-z._~+/=-]*[0-9])[A-Za-z0-9._~+/=-]{6,}|[A-Za-z0-9._~+/=-]{20,})"
)


def scrub(text: str) -> str:
    """Mask token-shaped strings a report must never show whole (keeps a short prefix)."""
    text = _JWT.sub(lambda m: m.group(0)[:6] + MASK, text)
    return _AUTH_SCHEME.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", text)


def esc(value: object) -> str:
    """Scrubbed and HTML-escaped text of any value (None becomes an empty string)."""
    if value is None:
        return ""
    return html.escape(scrub(str(value)), quote=True)


_CODE_SPAN = re.compile(r"`([^`]+)`")


def rich(value: object) -> str:
    """Like `esc`, but `code spans` of the catalogue's Markdown become <code>."""
    return _CODE_SPAN.sub(r"<code>\1</code>", esc(value))


def anchor(prefix: str, key: str) -> str:
    """A stable, HTML-safe element id for any string (node IDs contain `[`, `/`, `:`...)."""
    return f"{prefix}-{hashlib.sha1(key.encode('utf-8', 'replace')).hexdigest()[:12]}"


def badge(verdict: str) -> str:
    word = verdict if verdict in VERDICT_LABELS else "unknown"
    label = VERDICT_LABELS.get(verdict, verdict)
    return f'<span class="badge v-{esc(word)}">{esc(label)}</span>'


def fmt_time(epoch: object) -> str:
    if not isinstance(epoch, int | float) or isinstance(epoch, bool):
        return ""
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(float(epoch)))


def write_atomic(path: Path, text: str) -> Path:
    """Write through a temporary file so a reader never sees half a report."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path


STYLE = (
    """
:root{--fg:#1f2328;--muted:#59636e;--line:#d1d9e0;--bg:#fff;--soft:#f6f8fa;
--pass:#1a7f37;--pass-bg:#dafbe1;--fail:#cf222e;--fail-bg:#ffebe9;--error:#8c1d9e;
--error-bg:#fbefff;--warning:#9a6700;--warning-bg:#fff8c5;--skipped:#59636e;
--skipped-bg:#eff2f5;--not_tested:#6e7781;--not_tested-bg:#ffffff;--accent:#0969da}
*{box-sizing:border-box}
body{margin:0;font:14px/1.5 -apple-system,BlinkMacSystemFont,"Segoe UI",Helvetica,Arial,
sans-serif;color:var(--fg);background:var(--bg)}
main{max-width:1200px;margin:0 auto;padding:24px 28px 64px}
header.top{border-bottom:1px solid var(--line);padding-bottom:14px;margin-bottom:8px}
h1{font-size:26px;margin:0 0 4px}
h2{font-size:20px;margin:36px 0 12px;padding-bottom:6px;border-bottom:1px solid var(--line)}
h3{font-size:16px;margin:22px 0 8px}
.sub{color:var(--muted);font-size:15px;word-break:break-all}
.meta{display:grid;grid-template-columns:repeat(auto-fill,minmax(210px,1fr));gap:6px 20px;
margin:12px 0 0;padding:0}
.meta div{display:flex;flex-direction:column}
.meta dt{color:var(--muted);font-size:12px;text-transform:uppercase;letter-spacing:.04em}
.meta dd{margin:0;font-weight:600;word-break:break-word}
nav.toc{display:flex;flex-wrap:wrap;gap:4px 16px;margin:14px 0 0;font-size:13px}
a{color:var(--accent);text-decoration:none}a:hover{text-decoration:underline}
.banner{margin:14px 0 0;padding:10px 14px;border-radius:6px;font-weight:600;
border:1px solid var(--fail);background:var(--fail-bg);color:var(--fail)}
.banner.ok{border-color:var(--pass);background:var(--pass-bg);color:var(--pass)}
.banner.warn{border-color:var(--warning);background:var(--warning-bg);color:var(--warning)}
.cards{display:grid;grid-template-columns:repeat(6,1fr);gap:10px}
.card{border:1px solid var(--line);border-radius:8px;padding:10px 12px;border-top-width:5px}
.card .n{font-size:28px;font-weight:700;line-height:1.1}
.card .l{color:var(--muted);font-size:12px;text-transform:uppercase;letter-spacing:.04em}
.bar{display:flex;height:12px;border-radius:6px;overflow:hidden;margin:12px 0 4px;
background:var(--soft)}
.bar span{display:block;height:100%}
.small{font-size:12px;color:var(--muted)}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{border-bottom:1px solid var(--line);padding:5px 8px;text-align:left;vertical-align:top}
thead th{background:var(--soft);position:sticky;top:0;z-index:1;font-size:12px;
text-transform:uppercase;letter-spacing:.03em;color:var(--muted)}
tr.group th{background:#eef1f4;color:var(--fg);font-size:13px;text-transform:none;
letter-spacing:0;padding-top:8px}
td.id{white-space:nowrap;font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;
font-size:12px}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.tests{min-width:150px}td.tests a{display:inline-block;margin-right:8px;font-size:12px;
overflow-wrap:anywhere}
table.kvt th{width:240px;color:var(--muted);font-weight:600}
code,pre{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12px}
code{background:var(--soft);padding:0 3px;border-radius:4px}
pre{background:var(--soft);border:1px solid var(--line);border-radius:6px;padding:8px 10px;
white-space:pre-wrap;word-break:break-all;margin:4px 0 8px;max-height:420px;overflow:auto}
pre.curl{background:#0d1117;color:#e6edf3;border-color:#0d1117}
.badge{display:inline-block;min-width:64px;text-align:center;padding:1px 8px;
border-radius:10px;font-size:12px;font-weight:600;border:1px solid;white-space:nowrap}
"""
    + "".join(
        f".v-{v}{{color:var(--{c});background:var(--{c}-bg);border-color:var(--{c})}}"
        f".card.v-{v}{{background:var(--bg);border-color:var(--line);border-top-color:var(--{c})}}"
        f".bar .v-{v}{{background:var(--{c})}}"
        for v, c in (
            ("pass", "pass"),
            ("passed", "pass"),
            ("fail", "fail"),
            ("failed", "fail"),
            ("error", "error"),
            ("inconclusive", "skipped"),
            ("warning", "warning"),
            ("skipped", "skipped"),
            ("not_tested", "not_tested"),
            ("unknown", "skipped"),
        )
    )
    + """
.badge.v-not_tested{border-style:dashed}
.bar .v-not_tested{background:#d8dee4}
article.failure{border:1px solid var(--line);border-left:5px solid var(--fail);
border-radius:6px;padding:10px 14px;margin:14px 0}
article.failure.sev-error{border-left-color:var(--error)}
article.failure.sev-warning{border-left-color:var(--warning)}
article.failure h3{margin:0 0 4px}
.kv{color:var(--muted);font-size:12px;margin-bottom:6px}
.kv b{color:var(--fg);font-weight:600}
.cmp{display:grid;grid-template-columns:1fr 1fr;gap:10px}
.cmp .label{font-size:12px;font-weight:600;color:var(--muted)}
.cmp .exp pre{border-color:var(--pass);background:var(--pass-bg)}
.cmp .got pre{border-color:var(--fail);background:var(--fail-bg)}
details{margin:6px 0}
summary{cursor:pointer;font-weight:600;font-size:13px}
.groups{display:grid;grid-template-columns:repeat(auto-fill,minmax(360px,1fr));gap:12px}
.groups>div{min-width:0}.groups td a,td.id{overflow-wrap:anywhere}
.chips span{margin-right:6px}
#filters{margin:0 0 8px;font-size:13px}
#filters label{margin-right:12px;white-space:nowrap}
"""
    + "".join(f"table.hide-{v} tr.r-{v}{{display:none}}" for v in VERDICT_ORDER)
    + """
figure{margin:10px 0 20px;border:1px solid var(--line);border-radius:8px;padding:8px}
figure img{max-width:100%;height:auto;display:block;margin:0 auto}
figcaption{color:var(--muted);font-size:12px;margin-top:4px}
footer{margin-top:40px;color:var(--muted);font-size:12px;border-top:1px solid var(--line);
padding-top:10px}
@media print{thead th{position:static}details{display:block}}
@media (max-width:800px){.cards{grid-template-columns:repeat(3,1fr)}.cmp{grid-template-columns:1fr}}
"""
)


# The report may load nothing from anywhere: inline styles and script, images as data: URIs.
CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
    "img-src data:; base-uri 'none'; form-action 'none'"
)


def page(title: str, body: Iterable[str], *, script: str = "") -> str:
    """One self-contained HTML document: inline CSS, optional inline JS, no external URLs."""
    parts = [
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<meta name="generator" content="ciba-harness">',
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        f"<title>{esc(title)}</title><style>{STYLE}</style></head><body><main>",
        *body,
        "</main>",
    ]
    if script:
        parts.append(f"<script>{script}</script>")
    parts.append("</body></html>\n")
    return "".join(parts)
