"""Regenerate reference/am025.json from Debian's real Alertmanager 0.25 (`prometheus-alertmanager`).

    .venv/bin/python tests/unit/alerting/make_reference.py

It starts Alertmanager (by PID, on free 127.0.0.1 ports) with REFERENCE_CONFIG, posts REFERENCE_ALERTS,
and records what Alertmanager computed: the webhook payloads (group keys, group labels, fingerprints,
alert order, common labels, truncation), GET /api/v2/alerts (receivers, inhibition) and
/api/v2/alerts/groups. The unit tests compare hostwatch's results with these values.
"""

from __future__ import annotations

import http.server
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

OUT = Path(__file__).parent / "reference" / "am025.json"

REFERENCE_CONFIG = """
route:
  receiver: default
  group_by: [alertname]
  group_wait: 1s
  group_interval: 1h
  repeat_interval: 4h
  routes:
    - matchers: ['team="db"', 'severity=~"crit|page"']
      receiver: db
      group_by: [alertname, instance]
      continue: true
      routes:
        - match: {env: prod}
          match_re: {dc: "eu.*"}
          receiver: db-prod
    - matchers: ['team = db', 'quoted="a \\"b\\" c,d"']
      receiver: quoted
      group_by: ['...']
    - matchers: ['{team="db"}']
      receiver: everything
      group_by: ['...']
    - match: {team: web}
      receiver: web
      group_by: []
      max_alerts_note: unused
receivers:
  - name: default
    webhook_configs: [{url: "URL/default"}]
  - name: db
    webhook_configs: [{url: "URL/db", max_alerts: 1}]
  - name: db-prod
    webhook_configs: [{url: "URL/db-prod", max_alerts: 1}]
  - name: quoted
    webhook_configs: [{url: "URL/quoted"}]
  - name: everything
    webhook_configs: [{url: "URL/everything"}]
  - name: web
    webhook_configs: [{url: "URL/web"}]
inhibit_rules:
  - source_matchers: [severity="page"]
    target_matchers: [severity="warn"]
    equal: [alertname, cluster]
""".replace("      max_alerts_note: unused\n", "")

START = "2024-01-02T03:04:05.123456789Z"
END = "2099-01-01T00:00:00Z"
PAST = "2024-01-02T03:09:05Z"  # an end already passed: resolved on arrival

REFERENCE_ALERTS: list[dict[str, Any]] = [
    {"labels": {"alertname": "DiskFull", "team": "db", "severity": "crit", "instance": "db1:9100", "env": "prod",
                "dc": "eu-west"}, "annotations": {"summary": "disk full", "description": "a"},
     "startsAt": START, "endsAt": END, "generatorURL": "http://prom/graph?g0.expr=up"},
    {"labels": {"alertname": "DiskFull", "team": "db", "severity": "crit", "instance": "db1:9100", "env": "prod",
                "dc": "eu-north", "job": "node"}, "annotations": {"summary": "disk full", "description": "b"},
     "startsAt": START, "endsAt": END},
    {"labels": {"alertname": "DiskFull", "team": "db", "severity": "warn", "instance": "db3", "cluster": "c1"},
     "startsAt": START, "endsAt": END},
    {"labels": {"alertname": "DiskFull", "team": "db", "severity": "page", "instance": "db4", "cluster": "c1"},
     "startsAt": START, "endsAt": END},
    {"labels": {"alertname": "DiskFull", "team": "db", "severity": "warn", "instance": "db5", "cluster": "c2"},
     "startsAt": START, "endsAt": END},
    {"labels": {"alertname": "Latency", "team": "web", "job": "nginx", "instance": "b",
                "quote": "a\"b\\c\nd \u00e9 \u2603 <&>"}, "annotations": {"x": "1"}, "startsAt": START, "endsAt": END},
    {"labels": {"alertname": "Latency", "team": "web", "job": "nginx", "instance": "a"},
     "annotations": {"x": "1", "y": "2"}, "startsAt": START, "endsAt": END},
    {"labels": {"alertname": "Latency", "team": "web", "job": "apache"}, "startsAt": START, "endsAt": PAST},
    {"labels": {"alertname": "Quoted", "team": "db", "quoted": "a \"b\" c,d"}, "startsAt": START, "endsAt": END},
    {"labels": {"alertname": "Gone", "team": "ops"}, "startsAt": START, "endsAt": PAST},
    {"labels": {"alertname": "Other", "x": "y", "empty": ""}, "startsAt": START, "endsAt": END},
    {"labels": {}},
    {"labels": {"bad name": "x"}},
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.loads(r.read())


def main() -> int:
    hooks: list[dict[str, Any]] = []

    class Hook(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers["Content-Length"]))
            hooks.append({"path": self.path, "body": json.loads(body), "raw": body.decode()})
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    hook = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    port = _free_port()
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "am.yml"
        cfg.write_text(REFERENCE_CONFIG.replace("URL", f"http://127.0.0.1:{hook.server_address[1]}"))
        proc = subprocess.Popen(["prometheus-alertmanager", f"--config.file={cfg}", f"--storage.path={tmp}/data",
                                 f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address="],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            base = f"http://127.0.0.1:{port}"
            for _ in range(100):
                try:
                    _get(base + "/api/v2/status")
                    break
                except OSError:
                    time.sleep(0.1)
            req = urllib.request.Request(base + "/api/v2/alerts", data=json.dumps(REFERENCE_ALERTS).encode(),
                                         headers={"Content-Type": "application/json"}, method="POST")
            try:
                urllib.request.urlopen(req, timeout=5)
                post = {"status": 200, "body": ""}
            except urllib.error.HTTPError as e:
                post = {"status": e.code, "body": json.loads(e.read())}
            time.sleep(4)
            alerts = _get(base + "/api/v2/alerts")
            groups = _get(base + "/api/v2/alerts/groups")
        finally:
            os.kill(proc.pid, signal.SIGTERM)
            proc.wait(10)
            hook.shutdown()
    hooks.sort(key=lambda h: (h["path"], h["body"]["groupKey"]))
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps({"config": REFERENCE_CONFIG, "alerts_posted": REFERENCE_ALERTS, "post": post,
                               "webhooks": hooks, "alerts": alerts, "groups": groups}, indent=1, ensure_ascii=False)
                   + "\n")
    print(f"wrote {OUT}: {len(hooks)} webhooks, {len(alerts)} alerts, {len(groups)} groups")
    return 0


if __name__ == "__main__":
    sys.exit(main())
