"""The webhook integration: Alertmanager's payload (version "4") and delivery rules.

Keys in Alertmanager's order (template.Data, then version, groupKey, truncatedAlerts); maps with sorted
keys and Go's HTML-safe escaping, as encoding/json writes them. `max_alerts` truncates the alerts and
the rest of the payload is computed over the ones kept. 2xx is delivered, 5xx or a connection error is
retried, any other status fails for good (notify/util.go's Retrier).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from alerting.config import WebhookConfig
from alerting.http11 import BadURL, HTTPError
from alerting.httpclient import HTTPClient
from alerting.model import Alert, common, format_time_ns, fp_hex, regexp_quote_meta
from alerting.stages import NotifyContext, NotifyError

USER_AGENT = "hostwatch-alerting (Alertmanager/0.25 webhook compatible)"
DEFAULT_ATTEMPT_TIMEOUT = 30.0


_GO_ESCAPES = ((b"<", b"\\u003c"), (b">", b"\\u003e"), (b"&", b"\\u0026"), ("\u2028".encode(), b"\\u2028"),
               ("\u2029".encode(), b"\\u2029"))


def go_json(obj: Any) -> bytes:
    """json.Encoder output: HTML-safe escapes, a trailing newline (orjson escapes the rest as Go does)."""
    data = orjson.dumps(obj)
    for raw, esc in _GO_ESCAPES:
        if raw in data:
            data = data.replace(raw, esc)
    return data + b"\n"


def template_alert(a: Alert, now_ns: int) -> dict[str, Any]:
    return {"status": a.status(now_ns), "labels": dict(sorted(a.labels.items())),
            "annotations": dict(sorted(a.annotations.items())), "startsAt": format_time_ns(a.starts_at),
            "endsAt": format_time_ns(a.ends_at), "generatorURL": a.generator_url, "fingerprint": fp_hex(a.fp)}


def webhook_message(receiver: str, group_key: str, group_labels: dict[str, str], alerts: Sequence[Alert],
                    external_url: str, max_alerts: int, now_ns: int) -> dict[str, Any]:
    kept = list(alerts[:max_alerts]) if max_alerts > 0 else list(alerts)
    status = "firing" if any(not a.resolved_at(now_ns) for a in kept) else "resolved"
    return {
        "receiver": regexp_quote_meta(receiver),
        "status": status,
        "alerts": [template_alert(a, now_ns) for a in kept],
        "groupLabels": dict(sorted(group_labels.items())),
        "commonLabels": dict(sorted(common([a.labels for a in kept]).items())),
        "commonAnnotations": dict(sorted(common([a.annotations for a in kept]).items())),
        "externalURL": external_url,
        "version": "4",
        "groupKey": group_key,
        "truncatedAlerts": len(alerts) - len(kept),
    }


class WebhookNotifier:
    def __init__(self, config: WebhookConfig, client: HTTPClient, external_url: str, now_ns: Any) -> None:
        self.config, self.client, self.external_url, self.now = config, client, external_url, now_ns

    async def notify(self, ctx: NotifyContext, alerts: Sequence[Alert]) -> None:
        body = go_json(webhook_message(ctx.receiver, ctx.group_key, ctx.group_labels, alerts, self.external_url,
                                       self.config.max_alerts, self.now()))
        await post_json(self.client, self.config.url, body, ctx)


async def post_json(client: HTTPClient, url: str, body: bytes, ctx: NotifyContext) -> None:
    """One delivery attempt of a webhook body; NotifyError (retriable or not) unless the answer is 2xx."""
    headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
    if ctx.claim:
        # Lets a receiver that cares recognise a re-delivery of the same notification.
        headers["Idempotency-Key"] = ctx.claim
    try:
        resp = await client.post(url, body, headers, ctx.attempt_timeout or DEFAULT_ATTEMPT_TIMEOUT)
    except TimeoutError:
        raise NotifyError(f"webhook {url}: timed out") from None
    except HTTPError as e:
        raise NotifyError(f"webhook {url}: {e}", retriable=not isinstance(e, BadURL)) from None
    if resp.status // 100 == 2:
        return
    detail = f": {resp.body.decode(errors='replace')}" if resp.body else ""
    raise NotifyError(f"webhook {url}: unexpected status code {resp.status}{detail}",
                      retriable=resp.status // 100 == 5)
