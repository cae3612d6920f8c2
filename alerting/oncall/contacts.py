"""People, their contact methods, and the notifications the escalator asks the core to deliver.

A notification names the person, the contact (a webhook URL or an email address), the alert group,
the policy level and the acknowledge link. The link is a template with these fields:
`{external_url}` (the replica's --web.external-url, trailing '/' removed), `{group_key_hash}`
(sha256 of the groupKey in hex: Alertmanager's notify Key.Hash(), the groupID of the core's
`POST /api/v2/alerts/groups/{groupID}/ack`), `{person}` and `{incident}`. The default points at that
ack endpoint: GET on it serves a confirmation page whose button POSTs (alerting/web/ackpage.py), so a
link previewer acknowledges nothing.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote

from hostwatch.core.timefmt import rfc3339_nano

WEBHOOK: Literal["webhook"] = "webhook"
EMAIL: Literal["email"] = "email"
ContactType = Literal["webhook", "email"]
CONTACT_TYPES = (WEBHOOK, EMAIL)

KIND_PAGE, KIND_RESOLVED, KIND_ACKNOWLEDGED = "page", "resolved", "acknowledged"  # Notification.kind
DEFAULT_ACK_URL = "{external_url}/api/v2/alerts/groups/{group_key_hash}/ack"
PAYLOAD_VERSION = "1"


def group_key_hash(group_key: str) -> str:
    """sha256(groupKey) hex, as alerting.dispatch.group_id and Alertmanager's Key.Hash()."""
    return hashlib.sha256(group_key.encode()).hexdigest()


@dataclass(frozen=True)
class Contact:
    type: ContactType
    address: str  # the webhook URL or the email address

    def record(self) -> dict[str, str]:
        return {"type": self.type, "address": self.address}


@dataclass(frozen=True)
class Person:
    name: str
    contacts: tuple[Contact, ...]


@dataclass(frozen=True)
class Recipient:
    person: str
    contact: Contact

    def record(self) -> dict[str, str]:
        return {"person": self.person, **self.contact.record()}

    @staticmethod
    def from_record(d: Any) -> Recipient:
        if not isinstance(d, dict):
            raise ValueError("a recipient must be an object")
        kind = str(d.get("type", ""))
        if kind not in CONTACT_TYPES:
            raise ValueError(f"unknown contact type {kind!r}")
        return Recipient(str(d["person"]), Contact(WEBHOOK if kind == WEBHOOK else EMAIL, str(d["address"])))


def ack_url(template: str, external_url: str, group_key: str, person: str = "", incident: int = 0) -> str:
    return template.format(external_url=external_url.rstrip("/"), group_key_hash=group_key_hash(group_key),
                           person=quote(person, safe=""), incident=incident)


@dataclass(frozen=True)
class Notification:
    """Something to tell one person through one contact. `id` is the same on every replica (the core
    can claim and de-duplicate on it); `ack_url` depends on the replica's external URL."""

    id: str
    kind: str  # KIND_PAGE, KIND_RESOLVED or KIND_ACKNOWLEDGED
    group_key: str
    incident: int
    policy: str
    step: int  # 0-based position in the policy, counting repeats
    level: int  # 1-based level of the policy
    cycle: int  # 0 on the first pass, 1 on the first repeat, ...
    recipient: Recipient
    at_ns: int
    ack_url: str
    acknowledged_by: str = ""

    @property
    def person(self) -> str:
        return self.recipient.person

    @property
    def contact(self) -> Contact:
        return self.recipient.contact

    def payload(self) -> dict[str, Any]:
        """The `oncall` object for a webhook body (the core may put it beside Alertmanager's fields)."""
        return {"version": PAYLOAD_VERSION, "id": self.id, "kind": self.kind, "groupKey": self.group_key,
                "groupKeyHash": group_key_hash(self.group_key), "incident": self.incident, "policy": self.policy,
                "level": self.level, "cycle": self.cycle, "person": self.person, "contact": self.contact.record(),
                "ackURL": self.ack_url, "acknowledgedBy": self.acknowledged_by,
                "time": rfc3339_nano(ns=self.at_ns)}


def notification_id(group_key: str, incident: int, kind: str, step: int, r: Recipient) -> str:
    raw = "\x00".join((group_key, str(incident), kind, str(step), r.person, r.contact.type, r.contact.address))
    return hashlib.sha256(raw.encode()).hexdigest()[:32]
