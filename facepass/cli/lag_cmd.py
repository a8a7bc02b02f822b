"""`facepass lag`: how far the embedder group is behind, per partition."""

from __future__ import annotations

import asyncio

import typer
from aiokafka.errors import KafkaError

from facepass.cli.common import settings_or_exit
from libs.common.kafka import consumer_lag


def lag(
    group: str | None = typer.Option(None, help="Consumer group (KAFKA_CONSUMER_GROUP)."),
    topic: str | None = typer.Option(None, help="Topic (KAFKA_TOPIC_UPLOADED)."),
) -> None:
    """Committed offset, end offset and lag of each partition, and the total.

    The end offset is the high watermark a Fetch returns, not ListOffsets' answer (wrong on the
    embedded broker: libs/common/kafka.py `log_end_offsets`), so the lag is never negative.
    """
    settings = settings_or_exit("cli")
    kafka = settings.kafka
    group, topic = group or kafka.consumer_group, topic or kafka.topic_uploaded
    try:
        rows = asyncio.run(consumer_lag(kafka, group, topic))
    except KafkaError as exc:
        typer.echo(f"facepass lag: {type(exc).__name__}: {exc} ({kafka.bootstrap})", err=True)
        raise typer.Exit(code=1) from exc
    typer.echo(f"group {group} on {topic}")
    typer.echo(f"{'partition':>9} {'committed':>10} {'end':>10} {'lag':>8}")
    for row in rows:
        committed = "-" if row.committed is None else str(row.committed)
        typer.echo(f"{row.partition:>9} {committed:>10} {row.end:>10} {row.lag:>8}")
    typer.echo(f"{'total':>9} {'':>10} {'':>10} {sum(r.lag for r in rows):>8}")


def register(app: typer.Typer) -> None:
    app.command()(lag)
