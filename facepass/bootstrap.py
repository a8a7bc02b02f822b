"""Make the dependencies ready for the services: schema, bucket, topics.

Runs after the embedded stack is up, or against external servers; every step is idempotent, so
`facepass up` runs it on every start.
"""

from __future__ import annotations

import asyncio

from libs.common.db.migrate import Migrator
from libs.common.kafka import ensure_topics
from libs.common.log import get_logger
from libs.common.settings import Settings
from libs.common.storage import ensure_buckets_sync

log = get_logger(__name__)


def prepare_dependencies(settings: Settings) -> None:
    applied = Migrator(settings.postgres, settings.face.embedding_dimension).migrate()
    log.info("database migrated", applied=applied)
    ensure_buckets_sync(settings.s3, [settings.s3.bucket])
    created = asyncio.run(ensure_topics(settings.kafka))
    log.info("kafka topics ready", created=created)
