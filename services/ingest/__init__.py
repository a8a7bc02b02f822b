"""Ingest: POST /api/v2/index stores a photo in S3 and publishes `photos.uploaded`; photo
status and erasure routes, and the event's QR code (the organisers' keyed routes, all under
/api/v2/photos and /api/v2/sessions). Needs PostgreSQL, S3, Kafka and Redis (rate limits)."""

from __future__ import annotations

from libs.common.runtime import Need
from libs.common.service import ServiceSpec
from services.ingest.controllers import IngestController
from services.ingest.publishing import declare_uploaded_publisher
from services.ingest.qr import session_qr
from services.ingest.retention import enforce_retention

SERVICE = ServiceSpec(
    name="ingest",
    needs=frozenset({Need.DB, Need.S3, Need.KAFKA, Need.REDIS}),
    routes=(IngestController, session_qr),
    on_start=(declare_uploaded_publisher,),
    background=(enforce_retention,),
)
