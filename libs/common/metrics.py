"""Every FacePass Prometheus metric, declared once, each with what it counts.

HTTP request counts and latencies come from Litestar's Prometheus middleware (prefix
`facepass_`, labelled by route template and status); these are the pipeline's and search's own.
All are exported by `GET /api/v2/metrics` of whichever process records them.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

_STAGE_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

# --- ingest ------------------------------------------------------------------------------
PHOTOS_RECEIVED = Counter(
    "facepass_photos_received_total",
    "Photos accepted by POST /api/v2/index and published (duplicates counted apart).",
    ["outcome"],  # published | duplicate
)
PHOTOS_REJECTED = Counter(
    "facepass_photos_rejected_total",
    "Uploads refused by ingest before anything was stored, by reason.",
    ["reason"],
)
ERASURES = Counter("facepass_erasures_total", "Erasure requests carried out, by scope.", ["scope"])

# --- embedder ----------------------------------------------------------------------------
PHOTOS_INDEXED = Counter(
    "facepass_photos_indexed_total", "Photos whose faces were written to the index."
)
PHOTOS_FAILED = Counter(
    "facepass_photos_failed_total",
    "Photos sent to the DLQ, by error kind.",
    ["kind"],
)
PHOTOS_SKIPPED = Counter(
    "facepass_photos_skipped_total",
    "Uploaded events skipped: the photo or session was erased after the upload (erased), or "
    "newer bytes of the photo were uploaded since (superseded).",
    ["reason"],
)
DLQ_MESSAGES = Counter("facepass_dlq_messages_total", "Messages published to the DLQ topic.")
FACES_PER_PHOTO = Histogram(
    "facepass_faces_per_photo",
    "Faces indexed per photo.",
    buckets=(0, 1, 2, 3, 5, 8, 13, 21, 34, 55, 100),
)
FACES_REJECTED = Counter(
    "facepass_faces_rejected_total", "Faces kept out of the index by the quality gate.", ["reason"]
)
STAGE_SECONDS = Histogram(
    "facepass_stage_seconds",
    "Time per pipeline or search stage (download, decode, detect, embed, db, query, ...).",
    ["service", "stage"],
    buckets=_STAGE_BUCKETS,
)
BATCH_SIZE = Histogram(
    "facepass_embedder_batch_size",
    "Messages per batch the embedder consumed.",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128),
)
TRANSIENT_RETRIES = Counter(
    "facepass_embedder_retries_total",
    "Batches retried because a dependency was down (no offset committed).",
    ["dependency"],
)
ASSIGNED_PARTITIONS = Gauge(
    "facepass_embedder_assigned_partitions",
    "Partitions of the uploaded topic this embedder holds now (0: an idle replica, e.g. more "
    "replicas than partitions, or a rebalance in progress).",
)
CONSUMER_LAG = Gauge(
    "facepass_consumer_lag",
    "Records not yet consumed by the group, per partition (end offset - committed).",
    ["topic", "partition"],
)

# --- search ------------------------------------------------------------------------------
SEARCHES = Counter(
    "facepass_searches_total",
    "Selfie searches answered, by outcome.",
    ["outcome"],  # results | empty | no_face | invalid
)
CACHE_REQUESTS = Counter(
    "facepass_search_cache_requests_total", "Search cache look-ups, by result.", ["result"]
)
SESSION_QUERIES = Counter(
    "facepass_search_session_queries_total",
    "Per-session face queries, by path: matrix (the session's faces in memory) or sql.",
    ["path"],
)
SESSION_MATRIX_LOADS = Counter(
    "facepass_search_session_matrix_loads_total",
    "Background loads of a huge session's faces into memory, by outcome.",
    ["outcome"],  # loaded | small | too_big | gone | error
)
SESSION_MATRIX_UPDATES = Counter(
    "facepass_search_session_matrix_updates_total",
    "Changes of a huge session's faces applied to its in-memory matrix by a search (no load).",
)
SUBSCRIPTION_MATCHES = Counter(
    "facepass_subscription_matches_total",
    "Matched events published: a new photo of a subscription's person (repeats included).",
)
SUBSCRIPTIONS = Counter(
    "facepass_subscriptions_total",
    "Notify-me subscriptions made, deleted by their token, and expired.",
    ["change"],
)
SUBSCRIPTIONS_LIVE = Gauge(
    "facepass_subscriptions_live",
    "Notify-me subscriptions not yet expired, in all sessions (set by the retention job).",
)
WEBHOOK_DELIVERIES = Counter(
    "facepass_webhook_deliveries_total",
    "Matched events POSTed to platforms' webhooks: delivered, retried (an attempt that will be "
    "made again) and failed (refused, or out of attempts).",
    ["outcome"],
)
SESSION_MATRIX_BYTES = Gauge(
    "facepass_search_session_matrix_bytes",
    "Memory held by in-memory session matrices in this process (SEARCH_MATRIX_MEMORY_MB caps it).",
)
RATE_LIMITED = Counter(
    "facepass_rate_limited_total", "Requests refused with 429, by limit.", ["limit"]
)
DEPENDENCY_UP = Gauge(
    "facepass_dependency_up",
    "1 if the last health check reached the dependency, else 0 (set by GET /api/v2/health).",
    ["dependency"],
)
