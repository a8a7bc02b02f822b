"""Consumer lag where the numbers are known: N records published in producer-sized batches,
then consumed and committed by a group. `consumer_lag` and `facepass lag` must read N, then 0.

The embedded broker answers ListOffsets(latest) wrongly for partitions written in batches (see
libs/common/kafka.py `log_end_offsets`): before the fix the end offsets summed to 329-382 of
400 records, and the lag read -71 after the group had committed all of them.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import uuid

from libs.common.kafka import consumer_lag
from libs.common.settings import Settings
from tests.support.kafka import Topics, consume_and_commit, publish_batches, rdkafka_publish
from tests.support.processes import FACEPASS, stack_env

RECORDS = 400
PARTITIONS = 4


def _cli_lag(stack: Settings, topics: Topics, group: str) -> tuple[list[int], int]:
    """`facepass lag` for the group: the lag column per partition, and the total line."""
    result = subprocess.run(
        [FACEPASS, "lag", "--group", group, "--topic", topics.kafka.topic_uploaded],
        env=stack_env(stack, **topics.env()), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows = re.findall(r"^\s+\d+\s+(?:-|\d+)\s+\d+\s+(-?\d+)$", result.stdout, re.MULTILINE)
    total = re.search(r"^\s+total\s+(-?\d+)$", result.stdout, re.MULTILINE)
    assert len(rows) == PARTITIONS and total, result.stdout
    return [int(lag) for lag in rows], int(total.group(1))


def test_lag_counts_every_waiting_record_and_reads_zero_when_all_are_committed(
    stack: Settings,
) -> None:
    topics = Topics(stack, partitions=PARTITIONS)
    group, topic = f"lag-{uuid.uuid4().hex[:8]}", topics.kafka.topic_uploaded
    records = [(f"photo-{i}".encode(), b'{"n": %d}' % i) for i in range(RECORDS)]
    asyncio.run(publish_batches(stack.kafka.bootstrap, topic, records))

    before = asyncio.run(consumer_lag(topics.kafka, group, topic))
    assert [row.committed for row in before] == [None] * PARTITIONS
    assert all(row.end > 0 for row in before), before  # the keys reached every partition
    assert sum(row.end for row in before) == RECORDS, before
    assert sum(row.lag for row in before) == RECORDS, before
    lags, total = _cli_lag(stack, topics, group)
    assert lags == [row.lag for row in before] and total == RECORDS

    assert asyncio.run(consume_and_commit(stack.kafka.bootstrap, topic, group, RECORDS)) == RECORDS

    after = asyncio.run(consumer_lag(topics.kafka, group, topic))
    assert sum(row.committed or 0 for row in after) == RECORDS, after
    assert [row.lag for row in after] == [0] * PARTITIONS, after
    assert [row.end for row in after] == [row.committed for row in after], after
    assert _cli_lag(stack, topics, group) == ([0] * PARTITIONS, 0)


def test_lag_counts_the_records_of_a_compressed_batch(stack: Settings) -> None:
    """A zstd batch from librdkafka counts record by record: the watermark is read without
    decoding the records, so a batch a consumer could not decode would still show as lag."""
    topics = Topics(stack, partitions=1)
    topic = topics.kafka.topic_uploaded
    value = b'{"photo_id": "p", "padding": "%s"}' % (b"x" * 2000)  # worth compressing
    records = [(f"photo-{i}".encode(), value) for i in range(3)]
    rdkafka_publish(stack.kafka.bootstrap, topic, records, {"compression.type": "zstd"})
    rows = asyncio.run(consumer_lag(topics.kafka, f"lag-{uuid.uuid4().hex[:8]}", topic))
    assert [(row.end, row.lag) for row in rows] == [(3, 3)], rows
