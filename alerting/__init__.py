"""hostwatch alerting: an Alertmanager-compatible alert router whose replicas share state through Kafka.

Data flows one way: API v2 (`POST /api/v2/alerts` from Prometheus or amtool) -> alert store (merge by
fingerprint, store.py) -> dispatcher (route tree, aggregation groups with group_wait / group_interval /
repeat_interval timers, dispatch.py) -> notify stages, each `exec(ctx, alerts) -> alerts` (stages.py):
InhibitStage, SilenceStage, then per integration DedupStage -> ClaimStage(RetryStage(NotifyStage) ->
SetNotifiesStage), with WaitStage as the fail-open fallback. Every timer and timestamp reads an injected
Clock (clock.py).

State (silences, acks, notification log, claims, alerts, replica heartbeats) goes to one compacted
topic (`--kafka.topic`, default hostwatch-alerting) that every replica appends to and rebuilds from at
start (replog.py, state.py): alerts, silences and notification state survive restarts. Replicas never
talk to each other: the log's order decides which replica sends a notification (claims.py).

Fail-open (as Alertmanager): when Kafka is unreachable, a replica cannot claim; it waits its position
(its index among the replicas it last saw in the log, sorted by name) x `--cluster.peer-timeout`, checks
the notification log it has, and notifies. Replicas cut off from Kafka may therefore page twice; they
never stay silent. A duplicate page is better than a missed one.

Beyond Alertmanager: `POST /api/v2/alerts/groups/{groupID}/ack` acknowledges a group (groupID =
sha256(groupKey) hex, given as `id` in GET /api/v2/alerts/groups), `DELETE` clears it, GET /api/v2/acks
lists them (acks.py); webhook requests carry an `Idempotency-Key` header (the claim id).

On-call is built in (alerting/oncall, wired by paging.py): `people:`, `schedules:` and
`escalation_policies:` sit beside `route:` in the same file, and a receiver with `escalation_policy: NAME`
pages whoever is on call. Escalation events go through the replicated log (`oncall:` keys) and every
replica applies them in log order; acks from the API become escalation acks at their place in the log;
each notification to a person is claimed like any other (one delivery across replicas). The page at
`GET /` (alerting/web) shows groups, silences, who is on call and replica/Kafka health; GET on an ack
link serves a confirmation page whose button POSTs.

Extension points: `config.parse(..., extensions=)` for extra top-level sections; an IntegrationFactory
registered under "escalation_policy" (pipeline.py) replaces the built-in paging (tests use it);
`ReplicatedState.handlers` for records of a new kind; `Acks.observers` sees every (un)acknowledgement.
"""
