"""hostwatch against values real Alertmanager 0.25 computed (reference/am025.json, see make_reference.py):
fingerprints, route matching (continue, '...', match/match_re/matchers, quoting), group labels and
groupKeys, inhibition, API validation messages and the webhook payload byte for byte."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from alerting.config import loads
from alerting.inhibit import Inhibitor
from alerting.model import Alert, fp_hex, parse_time_ns, sort_alerts
from alerting.route import Route
from alerting.store import AlertStore, alert_from_api
from alerting.webhook import go_json, webhook_message

REF = json.loads((Path(__file__).parent / "reference" / "am025.json").read_text())
NOW = parse_time_ns("2030-01-01T00:00:00Z")  # after every PAST end, before every END
URL = "http://hook"


@pytest.fixture(scope="module")
def world() -> dict[str, Any]:
    cfg = loads(REF["config"].replace("URL", URL), "am025.yml")
    route = Route(cfg.route)
    store = AlertStore()
    errors = []
    for obj in REF["alerts_posted"]:
        try:
            store.put(alert_from_api(obj, NOW, 300 * 10**9), NOW)
        except ValueError as e:
            errors.append(str(e))
    inhibitor = Inhibitor(cfg.inhibit_rules)
    inhibitor.load(store)
    groups: dict[str, tuple[Route, dict[str, str], list[Alert]]] = {}
    for a in store:
        for r in route.match(a.labels):
            labels = r.group_labels(a.labels)
            groups.setdefault(r.group_key(labels), (r, labels, []))[2].append(a)
    return {"cfg": cfg, "route": route, "store": store, "errors": errors, "inhibitor": inhibitor, "groups": groups}


def test_post_validation_messages_match(world: dict[str, Any]) -> None:
    assert REF["post"]["status"] == 400
    assert "; ".join(world["errors"]) == REF["post"]["body"]


def test_fingerprints_receivers_and_inhibition_match(world: dict[str, Any]) -> None:
    store: AlertStore = world["store"]
    ours = {fp_hex(a.fp): a for a in store if not a.resolved_at(NOW)}
    assert sorted(ours) == sorted(a["fingerprint"] for a in REF["alerts"])
    for ref in REF["alerts"]:
        a = ours[ref["fingerprint"]]
        assert a.labels == ref["labels"]
        assert [r.opts.receiver for r in world["route"].match(a.labels)] == [r["name"] for r in ref["receivers"]]
        assert world["inhibitor"].mutes(a.labels, NOW) == ref["status"]["inhibitedBy"]


def test_groups_match(world: dict[str, Any]) -> None:
    ours = sorted((r.opts.receiver, json.dumps(labels, sort_keys=True)) for r, labels, alerts in
                  world["groups"].values() if any(not a.resolved_at(NOW) for a in alerts))
    theirs = sorted((g["receiver"]["name"], json.dumps(g["labels"], sort_keys=True)) for g in REF["groups"])
    assert ours == theirs


def test_webhook_payloads_match_byte_for_byte(world: dict[str, Any]) -> None:
    inhibited = {a["fingerprint"] for a in REF["alerts"] if a["status"]["inhibitedBy"]}
    compared = 0
    max_alerts = {r.name: r.webhook_configs[0].max_alerts for r in world["cfg"].receivers}
    for hook in REF["webhooks"]:
        body = hook["body"]
        if all(a["fingerprint"] in inhibited for a in body["alerts"]):
            continue  # Alertmanager flushed it before its inhibitor saw the source alert (a race there)
        route, labels, alerts = world["groups"][body["groupKey"]]
        snapshot = [a.copy() for a in alerts]
        for a in snapshot:
            if not a.resolved_at(NOW):
                a.ends_at = 0
        msg = webhook_message(route.opts.receiver, body["groupKey"], labels, sort_alerts(snapshot),
                              body["externalURL"], max_alerts[route.opts.receiver], NOW)
        assert msg == body
        assert go_json(msg).decode() == hook["raw"]
        compared += 1
    assert compared == len(REF["webhooks"]) - 1


def test_groups_without_firing_alerts_are_not_notified(world: dict[str, Any]) -> None:
    notified = {h["body"]["groupKey"] for h in REF["webhooks"]}
    resolved_only = [k for k, (_, _, alerts) in world["groups"].items() if all(a.resolved_at(NOW) for a in alerts)]
    assert resolved_only == ['{}:{alertname="Gone"}']
    assert not notified & set(resolved_only)
