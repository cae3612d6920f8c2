"""On-call routing, the part Alertmanager does not have: schedules of people (rotation layers with
restrictions, overrides), escalation policies and an event-sourced escalator per alert group.

Pure and clock-free: every function takes the time it computes for (`at`, `now`), so it is
table-tested without sleeping. Modules: rotation (one layer), schedule (layers + overrides ->
who is on call), contacts (people, notifications, the ack link), escalation (policies, events,
the `Escalator`), config (the YAML sections), command (`hostwatch alerting who-is-on-call`).
"""
