"""Embedder: the `facepass-embedder` consumer group. Fetches uploaded photos from S3, finds and
embeds their faces, writes them to PostgreSQL + pgvector, publishes indexed and DLQ events.
Scale it by running more processes (at most one per partition of the uploaded topic)."""

from __future__ import annotations

from libs.common.runtime import Need
from libs.common.service import ServiceSpec
from services.embedder.lag import report_lag
from services.embedder.subscriber import register_embedder

SERVICE = ServiceSpec(
    name="embedder",
    needs=frozenset({Need.DB, Need.S3, Need.KAFKA, Need.ENGINE}),
    on_start=(register_embedder,),
    background=(report_lag,),
)
