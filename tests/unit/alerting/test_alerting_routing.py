"""Route tree matching: depth-first, first match wins unless continue, '...' grouping, group keys."""

from __future__ import annotations

import pytest

from alerting.config import loads
from alerting.route import Route

TREE = loads("""
route:
  receiver: default
  group_by: [alertname]
  routes:
    - matchers: [team=db]
      receiver: db
      continue: true
      routes:
        - matchers: [severity=page]
          receiver: db-pager
        - matchers: [severity=~"page|crit"]
          receiver: db-crit
    - matchers: [team=db]
      receiver: db-audit
      group_by: ['...']
    - match_re: {team: "web|api"}
      receiver: frontend
      group_by: [alertname, instance]
    - matchers: [team=web]
      receiver: never
receivers: [{name: default}, {name: db}, {name: db-pager}, {name: db-crit}, {name: db-audit}, {name: frontend},
            {name: never}]
""")
ROOT = Route(TREE.route)

CASES = [
    ({"alertname": "A"}, ["default"]),
    ({"alertname": "A", "team": "db"}, ["db", "db-audit"]),  # continue on db goes on to its sibling
    ({"alertname": "A", "team": "db", "severity": "page"}, ["db-pager", "db-audit"]),  # first child wins
    ({"alertname": "A", "team": "db", "severity": "crit"}, ["db-crit", "db-audit"]),
    ({"alertname": "A", "team": "web"}, ["frontend"]),  # no continue: "never" is never reached
    ({"alertname": "A", "team": "webby"}, ["default"]),  # match_re is anchored
]


@pytest.mark.parametrize(("labels", "receivers"), CASES)
def test_match(labels: dict[str, str], receivers: list[str]) -> None:
    assert [r.opts.receiver for r in ROOT.match(labels)] == receivers
    assert ROOT.match_cached(labels) == ROOT.match(labels)


GROUPS = [
    ({"alertname": "A", "x": "1"}, ['{}:{alertname="A"}']),
    ({"x": "1"}, ["{}:{}"]),  # a group_by label the alert lacks is left out
    ({"alertname": "A", "team": "db", "severity": "page", "i": 'q"\n'},
     ['{}/{team="db"}/{severity="page"}:{alertname="A"}',
      '{}/{team="db"}:{alertname="A", i="q\\"\\n", severity="page", team="db"}']),
    ({"alertname": "A", "team": "api", "instance": "h:1"},
     ['{}/{team=~"^(?:web|api)$"}:{alertname="A", instance="h:1"}']),
]


@pytest.mark.parametrize(("labels", "keys"), GROUPS)
def test_group_keys(labels: dict[str, str], keys: list[str]) -> None:
    assert [r.group_key(r.group_labels(labels)) for r in ROOT.match(labels)] == keys
