"""The acknowledge link's pages, server-rendered (they must work from a phone's mail client, no JS).

`GET /api/v2/alerts/groups/{groupID}/ack[?by=NAME]` shows the group and a form; only its button
POSTs (a form body) to the same URL, which acknowledges and answers with `done()`. A link previewer or
mail scanner that fetches the link therefore acknowledges nothing.
"""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING

from aiohttp import web

from alerting.acks import Ack
from alerting.dispatch import AggregationGroup
from alerting.model import format_time_ms

if TYPE_CHECKING:
    from alerting.service import AlertingService

MAX_LISTED = 20  # alerts listed on the page; the rest are counted

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex"><title>{title} · hostwatch alerting</title>
<link rel="stylesheet" href="/static/style.css"><link rel="icon" href="data:,"></head>
<body class="ackpage"><main class="card narrow">
<h1>{title}</h1>
{body}
<p class="muted"><a href="/">Open the alerting page</a></p>
</main></body></html>
"""


def _page(title: str, body: str, status: int = 200) -> web.Response:
    return web.Response(text=_PAGE.format(title=escape(title), body=body), status=status, content_type="text/html",
                        charset="utf-8", headers={"Cache-Control": "no-store"})


def find_group(svc: AlertingService, gid: str) -> AggregationGroup | None:
    return next((g for g in svc.groups() if g.id == gid), None)


def _labels(labels: dict[str, str]) -> str:
    return " ".join(f'<span class="chip">{escape(k)}="{escape(v)}"</span>' for k, v in sorted(labels.items()))


def _describe(svc: AlertingService, group: AggregationGroup) -> str:
    now = svc.clock.time_ns()
    alerts = group.snapshot(now)
    items = []
    for a in alerts[:MAX_LISTED]:
        summary = a.annotations.get("summary") or a.annotations.get("description") or ""
        items.append(f"<li><b>{escape(a.labels.get('alertname', ''))}</b> {escape(summary)}"
                     f" <span class=\"muted\">({a.status(now)})</span></li>")
    more = f"<li class=\"muted\">and {len(alerts) - MAX_LISTED} more</li>" if len(alerts) > MAX_LISTED else ""
    return (f"<p>Receiver <b>{escape(group.route.opts.receiver)}</b>, group {_labels(group.labels) or '(all)'}</p>"
            f"<ul class=\"plain\">{''.join(items)}{more}</ul>")


def not_found() -> web.Response:
    return _page("Alert group not found", "<p>This alert group is not active here any more: it resolved, or the "
                                          "link belongs to another alerting service.</p>", 404)


def confirm(svc: AlertingService, request: web.Request) -> web.Response:
    group = find_group(svc, request.match_info["gid"])
    if group is None:
        return not_found()
    by = request.query.get("by", "")
    current = svc.acks.get(group.id)
    state = ""
    if current is not None:
        state = (f"<p class=\"notice\">Already acknowledged by <b>{escape(current.by or 'someone')}</b> at "
                 f"{escape(format_time_ms(current.at))}.</p>")
    form = (f"<form method=\"post\" action=\"{escape(request.rel_url.path_qs)}\" class=\"stack\">"
            f"<label>Your name <input name=\"by\" value=\"{escape(by)}\" autocomplete=\"name\"></label>"
            "<label>Comment <input name=\"comment\" placeholder=\"optional\"></label>"
            "<button type=\"submit\" class=\"primary\" id=\"ack-confirm\">Acknowledge</button></form>")
    hint = "<p class=\"muted\">Acknowledging stops the escalation: nobody further is paged for this group.</p>"
    return _page("Acknowledge alert group", _describe(svc, group) + state + hint + form)


def done(svc: AlertingService, group: AggregationGroup, ack: Ack) -> web.Response:
    who = escape(ack.by or "someone")
    return _page("Acknowledged", f"<p class=\"notice ok\">Acknowledged by <b>{who}</b>. Escalation stopped.</p>"
                                 + _describe(svc, group))
