"""The page at `GET /`, driven in Debian's headless Chromium (selenium with the system chromedriver; no
browser download) against two replicas sharing a Kafka topic (noida-db): alerts grouped as routed, a
silence created from an alert's labels mutes it (on both replicas), acknowledging a group shows it
acknowledged and stops its escalation, expiring the silence unmutes the alert; on-call and replica
health are shown. The screenshot goes to tmp_path, and to $HOSTWATCH_UI_SCREENSHOT when set (that is how
docs/alerting-ui.png is made)."""

from __future__ import annotations

import os
import secrets
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import test_alerting_ha as ha
from test_alerting_ha import Receiver, Replica

from peers import NoidaDB

noida, receiver = ha.noida, ha.receiver
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
WAIT = 20.0

CONFIG = """
route:
  receiver: team-ops
  group_by: [alertname, name]
  group_wait: 1s
  group_interval: 2s
  routes:
    - matchers: [severity="page"]
      receiver: pager
receivers:
  - name: team-ops
    webhook_configs: [{{url: "{hook}"}}]
  - name: pager
    escalation_policy: platform
people:
  - {{name: alice, contacts: [{{webhook_url: "{hook}"}}, {{email: alice@example.com}}]}}
  - {{name: bob, contacts: [{{webhook_url: "{hook}"}}]}}
  - {{name: carol, contacts: [{{webhook_url: "{hook}"}}]}}
  - {{name: dave, contacts: [{{email: dave@example.com}}]}}
schedules:
  - name: primary
    time_zone: Europe/Berlin
    layers: [{{users: [alice, bob], rotation: 1w, start: 2024-01-01T09:00:00}}]
  - name: secondary
    time_zone: America/New_York
    layers: [{{users: [carol, dave], rotation: 1d, start: 2024-01-01T08:00:00}}]
escalation_policies:
  - name: platform
    levels:
      - {{schedules: [primary], timeout: 15m}}
      - {{schedules: [secondary], timeout: 30m}}
"""

ALERTS = [
    ("CPUThrottlingHigh", "api", "page", "api was throttled in 87% of its CFS periods"),
    ("CPUThrottlingHigh", "ingest", "page", "ingest was throttled in 64% of its CFS periods"),
    ("ContainerMemoryNearLimit", "cache", "warn", "cache uses 93% of its 512 MiB memory limit"),
    ("ContainerRestarting", "batch", "warn", "batch restarted 4 times in 10 minutes"),
]


def alert(name: str, container: str, severity: str, summary: str) -> dict[str, Any]:
    now = time.time()
    return {"labels": {"alertname": name, "name": container, "severity": severity, "instance": "node-1:9100",
                       "job": "hostwatch"},
            "annotations": {"summary": summary},
            "startsAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 240)),
            "endsAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now + 900))}


@pytest.fixture
def pair(tmp_path: Path, noida: NoidaDB, receiver: Receiver) -> Iterator[tuple[Replica, Replica]]:
    cfg = tmp_path / "am.yml"
    cfg.write_text(CONFIG.format(hook=receiver.url))
    topic = f"hostwatch-alerting-{secrets.token_hex(4)}"
    started: list[Replica] = []
    try:
        for name in ("alerting-a", "alerting-b"):
            r = Replica(tmp_path, name, cfg, noida.bootstrap, topic, command=("hostwatch", "alerting"))
            started.append(r)
            r.start()
        yield started[0], started[1]
    finally:
        for r in started:
            r.stop()


@pytest.fixture
def browser() -> Iterator[Any]:
    for path in (CHROMIUM, CHROMEDRIVER):
        if not os.path.exists(path):
            pytest.fail(f"{path} missing (apt-get install chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    opts = Options()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1440,1000",
                "--lang=en-US", "--force-device-scale-factor=1"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    try:
        yield driver
    finally:
        driver.quit()


def until(driver: Any, what: str, fn: Any) -> Any:
    """fn(driver) once it is truthy; the page re-renders every few seconds, so an element found a moment
    ago may be gone (stale): that is retried too."""
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(driver, WAIT, poll_frequency=0.2,
                         ignored_exceptions=(NoSuchElementException, StaleElementReferenceException))
    return wait.until(lambda d: fn(d), message=what)


def alert_row(driver: Any, alertname: str) -> Any:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, f'li.alert[data-alertname="{alertname}"]')


def group_box(driver: Any, group_key: str) -> Any:
    from selenium.webdriver.common.by import By

    for box in driver.find_elements(By.CSS_SELECTOR, "article.group"):
        if box.get_attribute("data-group-key") == group_key:
            return box
    return None


def poll(fn: Any, timeout: float = WAIT) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.2)


def test_silence_from_an_alert_and_acknowledge_a_group_in_the_browser(
        pair: tuple[Replica, Replica], browser: Any, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    a, b = pair
    for r in (a, b):
        r.post_alerts([alert(*x) for x in ALERTS])
    api_key = '{}/{severity="page"}:{alertname="CPUThrottlingHigh", name="api"}'
    assert poll(lambda: any(e["groupKey"] == api_key for e in a.request("GET", "/api/hostwatch/escalations")))

    browser.get(a.url + "/")
    until(browser, "the page loaded", lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-loaded"))
    until(browser, "four alerts shown", lambda d: len(d.find_elements(By.CSS_SELECTOR, "li.alert")) == 4)
    blocks = [e.text for e in browser.find_elements(By.CSS_SELECTOR, ".receiver-block > h3")]
    assert blocks == ["RECEIVER PAGER", "RECEIVER TEAM-OPS"]  # grouped as routed
    me = browser.find_element(By.ID, "me")
    me.clear()
    me.send_keys("alice")

    # A silence from the alert's labels.
    assert until(browser, "a firing alert",
                 lambda d: "state-firing" in alert_row(d, "ContainerRestarting").get_attribute("class"))
    until(browser, "its silence button", lambda d: alert_row(d, "ContainerRestarting").find_element(
        By.CSS_SELECTOR, "button.silence").click() or True)
    dialog = until(browser, "the silence dialog", lambda d: d.find_element(By.ID, "silence-dialog"))
    until(browser, "the dialog open", lambda d: dialog.get_attribute("open") is not None)
    checked = dialog.find_elements(By.CSS_SELECTOR, "#silence-matchers input:checked")
    assert sorted(i.get_attribute("data-name") for i in checked) == ["alertname", "instance", "job", "name",
                                                                      "severity"]
    for box in checked:
        if box.get_attribute("data-name") in ("instance", "job"):
            box.click()  # widen it: any instance
    assert dialog.find_element(By.ID, "silence-author").get_attribute("value") == "alice"
    dialog.find_element(By.ID, "silence-comment").send_keys("deploying batch v2")
    dialog.find_element(By.ID, "silence-submit").click()
    until(browser, "the alert muted",
          lambda d: "state-silenced" in alert_row(d, "ContainerRestarting").get_attribute("class"))
    assert until(browser, "its badge", lambda d: alert_row(d, "ContainerRestarting").find_element(
        By.CSS_SELECTOR, ".badge").text) == "silenced"
    [sil] = [s for s in b.request("GET", "/api/v2/silences") if s["status"]["state"] == "active"]  # replicated
    assert (sil["createdBy"], sil["comment"]) == ("alice", "deploying batch v2")
    assert sorted((m["name"], m["value"]) for m in sil["matchers"]) == [
        ("alertname", "ContainerRestarting"), ("name", "batch"), ("severity", "warn")]
    assert poll(lambda: "ContainerRestarting" not in {x["labels"]["alertname"]
                                                      for x in b.request("GET", "/api/v2/alerts?silenced=false")})
    row = until(browser, "the silence listed", lambda d: d.find_element(
        By.CSS_SELECTOR, f'tr.silence[data-silence-id="{sil["id"]}"]').text)
    assert "deploying batch v2" in row and "active" in row

    # Acknowledge the api group.
    text = until(browser, "the api group paged", lambda d: group_box(d, api_key).text)
    assert "platform level 1 · paged " in text
    until(browser, "its ack button", lambda d: group_box(d, api_key).find_element(
        By.CSS_SELECTOR, "button.ack").click() or True)
    until(browser, "the group acknowledged", lambda d: "acked" in group_box(d, api_key).get_attribute("class"))
    assert "Acknowledged by alice" in until(browser, "its badge", lambda d: group_box(d, api_key).text)
    assert [x["acknowledgedBy"] for x in b.request("GET", "/api/v2/acks")] == ["alice"]
    assert poll(lambda: [e["status"] for e in b.request("GET", "/api/hostwatch/escalations")
                         if e["groupKey"] == api_key] == ["acknowledged"])

    # On call and health.
    oncall = until(browser, "on-call rows", lambda d: {
        tr.get_attribute("data-schedule"): tr.text for tr in d.find_elements(By.CSS_SELECTOR, "#oncall-body tr")
        if tr.get_attribute("data-schedule")})
    assert set(oncall) == {"primary", "secondary"}
    assert oncall["primary"].split()[0:2] == ["primary", "Europe/Berlin"]
    until(browser, "both replicas live",
          lambda d: len(d.find_elements(By.CSS_SELECTOR, "#cluster-body tr.live")) == 2)
    assert "Kafka ok" in until(browser, "health pills", lambda d: d.find_element(By.ID, "health-pills").text)

    shot = tmp_path / "alerting-ui.png"
    height = int(browser.execute_script("return document.documentElement.scrollHeight"))
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",  # the whole page, not the window
                            {"width": 1440, "height": height, "deviceScaleFactor": 1, "mobile": False})
    time.sleep(0.5)
    assert browser.save_screenshot(str(shot))
    browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    target = os.environ.get("HOSTWATCH_UI_SCREENSHOT")
    if target:
        shutil.copyfile(shot, target)

    # Expire the silence: the alert is firing again.
    until(browser, "the expire button", lambda d: d.find_element(
        By.CSS_SELECTOR, f'tr.silence[data-silence-id="{sil["id"]}"] button.expire').click() or True)
    until(browser, "the alert unmuted",
          lambda d: "state-firing" in alert_row(d, "ContainerRestarting").get_attribute("class"))
    assert poll(lambda: [s["status"]["state"] for s in b.request("GET", "/api/v2/silences")] == ["expired"])
