"""Prometheus metrics shared by all stream workers (names: leadflow_<what>_<unit>)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

EVENTS_CONSUMED = Counter(
    "leadflow_events_consumed_total", "Records read from a topic", ["service", "topic"]
)
EVENTS_PRODUCED = Counter(
    "leadflow_events_produced_total", "Records written to a topic", ["service", "topic"]
)
DEAD_LETTERS = Counter(
    "leadflow_dead_letters_total", "Records sent to a dead-letter topic", ["service", "topic", "reason"]
)
RETRIES = Counter(
    "leadflow_transient_retries_total", "Transient failures retried", ["service", "topic", "error"]
)
DUPLICATES = Counter(
    "leadflow_duplicates_skipped_total", "Records already applied, skipped", ["service", "topic"]
)
PROCESSING_SECONDS = Histogram(
    "leadflow_processing_seconds",
    "Time to process one record, decode to emitted output",
    ["service", "topic"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)

STORE_SECONDS = Histogram(
    "leadflow_store_seconds",
    "Round trip of one store command, by command and collection (where a worker's time goes)",
    ["service", "command", "collection"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5),
)


# ---- identity ------------------------------------------------------------------------------------
IDENTIFIERS_REJECTED = Counter(
    "leadflow_identity_identifiers_rejected_total",
    "Identifiers that could not be normalised or are junk, never linked",
    ["tenant", "type", "reason"],
)
IDENTITY_MERGES = Counter("leadflow_identity_merges_total", "Persons merged into another", ["tenant", "cause"])
IDENTITY_SPLITS = Counter("leadflow_identity_splits_total", "Persons split by ops", ["tenant"])
IDENTITY_ERASURES = Counter("leadflow_identity_erasures_total", "Persons erased on request", ["tenant"])
IDENTITY_CONFLICTS = Counter(
    "leadflow_identity_conflicts_total", "Touchpoints a guardrail held identifiers back from", ["tenant", "rule"]
)
IDENTITY_QUARANTINED = Counter(
    "leadflow_identity_quarantined_total", "Identifiers quarantined as hubs", ["tenant", "type"]
)
IDENTITY_REVIEWS = Counter(
    "leadflow_identity_reviews_total", "Possible matches queued for review, and their decisions", ["tenant", "state"]
)


# ---- the business, as the stream sees it ---------------------------------------------------------
LEAD_VERDICTS = Counter(
    "leadflow_lead_verdicts_total", "Touchpoints judged, by verdict and channel", ["tenant", "verdict", "channel"]
)
LEAD_REASONS = Counter(
    "leadflow_lead_verdict_reasons_total", "Reasons behind suspect and junk verdicts", ["tenant", "reason", "channel"]
)
STAGE_TRANSITIONS = Counter(
    "leadflow_lifecycle_transitions_total", "Lifecycle stage changes", ["tenant", "from_stage", "to_stage"]
)
REPEAT_INQUIRIES = Counter(
    "leadflow_repeat_inquiries_total", "Inquiries by a person who inquired within the repeat window", ["tenant", "channel"]
)
COLLISIONS = Counter(
    "leadflow_store_collisions_total", "Owned persons inquiring at another store (撞单), by resolution", ["tenant", "resolution"]
)
REFERRALS_CREDITED = Counter("leadflow_referrals_credited_total", "Referrers credited for a referred person", ["tenant"])
PHONES_MARKED_BAD = Counter("leadflow_phones_marked_invalid_total", "Phones reported invalid by consultants", ["tenant"])
SOURCE_ALERTS = Counter(
    "leadflow_source_alerts_total", "Sources whose bad rate jumped above baseline", ["tenant", "dimension"]
)
TIMER_RUNS = Counter("leadflow_timer_runs_total", "Timer runs, by service and result", ["service", "result"])
GRADE_CHANGES = Counter("leadflow_grade_changes_total", "Grade changes emitted", ["tenant", "from_grade", "to_grade"])
RESCORES = Counter("leadflow_rescores_total", "Timer re-scores (decay or a rescore request), by whether a change was emitted",
                   ["tenant", "cause", "result"])
MODEL_UPDATES = Counter("leadflow_model_updates_total", "Outcomes the scoring model learned from, by label", ["tenant", "label"])
TASKS_CREATED = Counter("leadflow_tasks_created_total", "Follow-up tasks created", ["tenant", "reason", "grade"])
TASKS_REFRESHED = Counter("leadflow_tasks_refreshed_total", "Open tasks updated by new signals instead of a second task",
                          ["tenant", "reason"])
OPEN_TASKS = Gauge("leadflow_open_tasks", "Open follow-up tasks, by queue (sales, verification, collision, manager, "
                   "pool), counted by the notify timer", ["tenant", "queue"])
SLA_BREACHES = Counter("leadflow_sla_breaches_total", "First-response deadlines missed", ["tenant", "grade"])
TASKS_REASSIGNED = Counter("leadflow_tasks_reassigned_total", "Tasks moved to another consultant", ["tenant", "cause"])
TASKS_POOLED = Counter("leadflow_tasks_pooled_total", "Tasks nobody followed up, returned to the shared pool", ["tenant"])
DELIVERIES = Counter("leadflow_deliveries_total", "Push delivery attempts, by channel and the status after",
                     ["tenant", "channel", "status"])
ACKNOWLEDGEMENTS = Counter("leadflow_customer_acknowledgements_total",
                           "Immediate acknowledgements queued to customers, by the channel the lead came from",
                           ["tenant", "channel"])
STREAM_ALERTS = Counter("leadflow_stream_alerts_total", "Stream alerts raised on ops.alerts", ["kind", "group"])
POOL_CLAIMS = Counter("leadflow_pool_claims_total", "Pooled leads claimed by consultants", ["tenant"])
END_TO_END_SECONDS = Histogram(
    "leadflow_end_to_end_seconds",
    "From a touchpoint's occurred_at to the task it caused being stored",
    ["tenant"],
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600),
)
