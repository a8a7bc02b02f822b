"""`facepass bench ...`: benchmark suites (../shared/BENCHMARKS.md) and their report."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated

import typer

from facepass.bench import report
from facepass.cli.common import settings_or_exit
from facepass.cli.faces_cmd import bench_faces

bench_app = typer.Typer(help="Benchmarks; results go to docs/bench/*.json.", no_args_is_help=True)
bench_app.command("faces")(bench_faces)


@bench_app.command("vectors")
def vectors(
    sessions: Annotated[int, typer.Option(help="Ordinary sessions.")] = 1000,
    faces: Annotated[int, typer.Option(help="Faces per ordinary session.")] = 900,
    big: Annotated[int, typer.Option(help="Faces of the one huge session.")] = 100_000,
    queries: Annotated[int, typer.Option(help="Queries per group.")] = 100,
    save: Annotated[bool, typer.Option(help="Write docs/bench/vectors.json.")] = True,
) -> None:
    """P3: per-session query time and recall against brute force, in a private schema of the
    configured PostgreSQL (dropped afterwards)."""
    from facepass.bench.vectors import Plan, run

    settings = settings_or_exit("bench")
    plan = Plan(sessions=sessions, faces_per_session=faces, big_session_faces=big, queries=queries)
    result = asyncio.run(run(settings, plan, progress=lambda line: typer.echo(line, err=True)))
    typer.echo(json.dumps(result, indent=2))
    if save:
        typer.echo(f"saved {report.save('vectors', result)}", err=True)


def register(app: typer.Typer) -> None:
    app.add_typer(bench_app, name="bench")
