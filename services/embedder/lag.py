"""A background job of every embedder: publish the group's lag per partition as a gauge.

Every embedder reports the whole group's lag (the same numbers), so dashboards and alerts take
`max by (partition)` rather than a sum. The end offsets come from Fetch responses, not
ListOffsets (libs/common/kafka.py `log_end_offsets` says why), so on the embedded broker too the
gauge counts the records that really wait and is never negative. (The alerts and KEDA read
kafka-exporter's and KEDA's own ListOffsets lag, which is right on Apache Kafka, their target.)
"""

from __future__ import annotations

import asyncio

from libs.common.kafka import consumer_lag
from libs.common.log import get_logger
from libs.common.metrics import CONSUMER_LAG
from libs.common.runtime import Runtime

log = get_logger(__name__)

INTERVAL_S = 15.0


async def report_lag(runtime: Runtime) -> None:
    kafka = runtime.settings.kafka
    while True:
        try:
            for row in await consumer_lag(kafka, kafka.consumer_group, kafka.topic_uploaded):
                CONSUMER_LAG.labels(kafka.topic_uploaded, str(row.partition)).set(row.lag)
        except Exception as exc:  # a metrics job must never take the embedder down
            log.warning("could not read consumer lag", error=type(exc).__name__)
        await asyncio.sleep(INTERVAL_S)
