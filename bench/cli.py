"""`python -m bench ...`: the benchmark suites of ../shared/BENCHMARKS.md and their report.

Every suite but `faces`, `crowd`, `renditions` and `vectors` starts a private embedded stack
(fresh state directory under .facepass/bench, free ports) unless `--configured` is given, and
always its own `facepass serve` processes with the settings its protocol needs; results go to
docs/bench/<suite>.json, `python -m bench report` writes docs/benchmarks.md and the plots.
`eval`, `eval-crowd` and `faces` measure the face engine on the library (cli_engine.py).

Run from the repository root (the bench is not installed; `python -m` finds it there).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from bench.suites import Sizes

from bench import cli_engine, goals, report
from libs.common.log import configure_logging
from libs.common.settings import Settings, SettingsError, load_settings

app = typer.Typer(
    name="bench",
    help="FacePass benchmarks; results go to docs/bench/*.json.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
SUITES = (
    "accuracy", "calibration", "multi-selfie", "ep", "pipeline", "load", "scale", "peer", "crowd",
    "renditions", "vectors", "marathon", "notify",
)  # fmt: skip

Dataset = Annotated[
    Path, typer.Option(help="LFW-layout dir (labels.csv) for LFW-Events and LFW selfies.")
]
Group = Annotated[Path, typer.Option(help="The group photos set (photos.csv, known/).")]
Configured = Annotated[
    bool,
    typer.Option(
        help="Use the configured servers (e.g. `facepass up`) instead of a private stack."
    ),
]
Keep = Annotated[bool, typer.Option(help="Keep the private stack's directory and server logs.")]
Save = Annotated[bool, typer.Option(help="Write docs/bench/<suite>.json.")]
LFW = Path("../shared/datasets/lfw-dev")
GROUP = Path("../shared/datasets/group")


def _doc(suite: str, what: str) -> str:
    """A suite's help: the goals it measures (goals.py), then what it does."""
    ids = ", ".join(goal.id for goal in goals.for_suite(suite))
    return f"{ids}: {what}" if ids else what


def _settings() -> Settings:
    try:
        settings = load_settings()
    except SettingsError as exc:
        typer.echo(f"bench: {exc}", err=True)
        raise typer.Exit(code=2) from exc
    configure_logging("bench", debug=settings.app.debug, level=settings.app.log_level)
    return settings


_VECTORS = (
    "per-session query time and recall against brute force, in a private schema of the "
    "configured PostgreSQL (dropped afterwards)."
)


@app.command("vectors", help=_doc("vectors", _VECTORS))
def vectors(
    sessions: Annotated[int, typer.Option(help="Ordinary sessions.")] = 1000,
    faces: Annotated[int, typer.Option(help="Faces per ordinary session.")] = 900,
    big: Annotated[int, typer.Option(help="Faces of the one huge session.")] = 100_000,
    queries: Annotated[int, typer.Option(help="Queries per group.")] = 100,
    save: Save = True,
) -> None:
    from bench.vectors import Plan, run

    settings = _settings()
    plan = Plan(sessions=sessions, faces_per_session=faces, big_session_faces=big, queries=queries)
    result = asyncio.run(run(settings, plan, progress=lambda line: typer.echo(line, err=True)))
    result["bench"] = {"stack": "configured"}  # the PostgreSQL of the settings
    typer.echo(json.dumps(result, indent=2))
    if save:
        typer.echo(f"saved {report.save('vectors', result)}", err=True)


_MARATHON = (
    "one huge session searched by the search API's own parts while photos are indexed into "
    "it, in a private schema of the configured PostgreSQL (dropped afterwards)."
)


@app.command("marathon", help=_doc("marathon", _MARATHON))
def marathon(
    faces: Annotated[int, typer.Option(help="Faces of the session.")] = 1_000_000,
    rate: Annotated[float, typer.Option(help="Photos indexed per second meanwhile.")] = 5.0,
    seconds: Annotated[float, typer.Option(help="How long to search while indexing.")] = 60.0,
    save: Save = True,
) -> None:
    from bench.marathon import Plan, run

    settings = _settings()
    plan = Plan(faces=faces, photos_per_s=rate, seconds=seconds)
    result = asyncio.run(run(settings, plan, progress=lambda line: typer.echo(line, err=True)))
    result["bench"] = {"stack": "configured"}  # the PostgreSQL of the settings
    typer.echo(json.dumps(result, indent=2))
    if save:
        typer.echo(f"saved {report.save('marathon', result)}", err=True)


def _run(
    suites: set[str],
    *,
    dataset: Path,
    group: Path,
    configured: bool,
    keep: bool,
    save: bool,
    quick: bool = False,
    sizes: Sizes | None = None,
) -> None:
    from bench.harness import open_bench
    from bench.marathon import Plan as MarathonPlan
    from bench.suites import Sizes, run_all

    sizes = sizes or Sizes()
    if quick:
        sizes = Sizes(
            draws=2, variants=(), pipeline_photos=24, scale_photos=24, load_photos=8,
            load_selfies=600, phone_selfies=10, uncached_s=5, cached_s=3, rate_limit_check=False,
            ep_draws=2, multi_selfie_draws=1, rendition_photos=1,
            marathon_plan=MarathonPlan(faces=100_000, seconds=10),
        )  # fmt: skip
    with open_bench(configured=configured, keep=keep) as bench:
        outcome = run_all(
            bench,
            sizes,
            dataset=dataset,
            group=group,
            suites=suites,
            save=save,
            progress=lambda line: typer.echo(line, err=True),
        )
    for suite, reason in outcome.skipped.items():
        typer.echo(f"skipped {suite}: {reason}", err=True)
    for suite, result in outcome.results.items():
        typer.echo(f"{suite}: {report.headline(suite, result)}")


def _suite_command(suite: str, what: str) -> None:
    def command(
        dataset: Dataset = LFW,
        group: Group = GROUP,
        configured: Configured = False,
        keep: Keep = False,
        save: Save = True,
    ) -> None:
        _run({suite}, dataset=dataset, group=group, configured=configured, keep=keep, save=save)

    app.command(suite, help=_doc(suite, what))(command)


_suite_command("accuracy", "LFW-Events through the HTTP API (and the group photos).")
_suite_command("pipeline", "end-to-end indexing photos/s beside the raw engine's.")
_suite_command("load", "search under load with wrk, distinct and repeated selfies.")
_suite_command("scale", "indexing photos/s with 2 embedder processes ÷ 1.")
_suite_command(
    "peer",
    "face_recognition (dlib) beside ours on LFW-Events (runs the accuracy suite too); on the EP "
    "draw too when the ep suite runs in the same run (`all`).",
)
_suite_command(
    "notify", "what 10,000 notify-me subscriptions add per photo, and the matched events' delay."
)


_CALIBRATION = (
    "LFW-Events through the HTTP API over many seeded draws (seeds 1..N), each in its own "
    "session: per threshold the mean and the worst draw, as labelled and on the verified "
    "truth, the rule's default threshold; then search-side variants (selfie flip, query "
    "expansion) re-searched on the same draws."
)


_CALIBRATION_VARIANTS_HELP = (
    "Variants to compare (repeat or comma-separate; `none` for none): neither, flip, "
    "expansion 0.5, expansion 0.6, expansion 0.7, flip + expansion 0.6. Default: all."
)


def _variants(names: list[str] | None, quick: bool) -> tuple[str, ...]:
    """The chosen variants (each option may name several, comma-separated), in `VARIANTS`
    order; all by default, none with --quick."""
    from bench.calibration import VARIANTS

    if quick:
        return ()
    if names is None:
        return tuple(VARIANTS)
    chosen = {n.strip() for name in names for n in name.split(",") if n.strip()}
    unknown = chosen - set(VARIANTS) - {"none"}
    if unknown:
        typer.echo(f"unknown variants: {', '.join(sorted(unknown))}; known: "
                   f"{', '.join(VARIANTS)} (or none)", err=True)  # fmt: skip
        raise typer.Exit(2)
    return tuple(name for name in VARIANTS if name in chosen)


@app.command("calibration", help=_doc("calibration", _CALIBRATION))
def calibration_command(
    dataset: Dataset = LFW,
    draws: Annotated[
        int, typer.Option(min=1, help="Draws (seeds 1..N); A1 asks for >= 20.")
    ] = goals.A1_DRAWS,
    variants: Annotated[
        list[str] | None,
        typer.Option(help=_CALIBRATION_VARIANTS_HELP),
    ] = None,
    quick: Annotated[bool, typer.Option(help="No variants: the base draws only.")] = False,
    configured: Configured = False,
    keep: Keep = False,
    save: Save = True,
) -> None:
    from bench.suites import Sizes

    chosen = _variants(variants, quick)
    _run({"calibration"}, dataset=dataset, group=GROUP, configured=configured, keep=keep,
         save=save, sizes=Sizes(draws=draws, variants=chosen))  # fmt: skip


_MULTI_SELFIE = (
    "LFW-Events with two selfies per attendee (its first two images; appearances from the "
    "third): one selfie, two fused `mean` and two fused `max` (SEARCH_SELFIES_FUSION) on the "
    "same collages of seeded draws (seeds 1..N), at the shipped threshold."
)


@app.command("multi-selfie", help=_doc("multi-selfie", _MULTI_SELFIE))
def multi_selfie_command(
    dataset: Dataset = LFW,
    draws: Annotated[int, typer.Option(min=1, help="Draws (seeds 1..N).")] = 10,
    configured: Configured = False,
    keep: Keep = False,
    save: Save = True,
) -> None:
    from bench.suites import Sizes

    _run({"multi-selfie"}, dataset=dataset, group=GROUP, configured=configured, keep=keep,
         save=save, sizes=Sizes(multi_selfie_draws=draws))  # fmt: skip


@app.command("ep", help=_doc("ep", "EP-12 (or EP-24): camera-size photos, phone selfies."))
def ep_command(
    dataset: Dataset = LFW,
    attendees: Annotated[int, typer.Option(help="Attendees drawn.")] = 80,
    distractors: Annotated[int, typer.Option(help="Distractor identities.")] = 300,
    photos: Annotated[int | None, typer.Option(help="Keep only the first N photos.")] = None,
    ep24: Annotated[bool, typer.Option("--ep24", help="6000x4000 photos (EP-24).")] = False,
    draws: Annotated[
        int, typer.Option(help="A3m: seeded draws after the main one (0: none).")
    ] = 20,
    draw_photos: Annotated[int, typer.Option(help="Photos of each of those draws.")] = 30,
    configured: Configured = False,
    keep: Keep = False,
    save: Save = True,
) -> None:
    from bench.protocols.event_photos import EpParams
    from bench.suites import Sizes

    params = EpParams.ep24 if ep24 else EpParams
    chosen = params(attendees=attendees, distractors=distractors)
    sizes = Sizes(ep=chosen, ep_photos=photos, ep_draws=draws, ep_draw_photos=draw_photos)
    _run({"ep"}, dataset=dataset, group=GROUP, configured=configured, keep=keep, save=save,
         sizes=sizes)  # fmt: skip


@app.command("crowd", help=_doc("crowd", "LFW-Crowd at T = 160 and 100 on the library."))
def crowd_command(dataset: Dataset = LFW, save: Save = True) -> None:
    from bench import crowd

    result = crowd.run(dataset, progress=lambda line: typer.echo(line, err=True))
    if save:
        typer.echo(f"saved {report.save('crowd', result)}", err=True)
    typer.echo(f"crowd: {report.headline('crowd', result)}")


@app.command("renditions", help="Thumbnails and previews: CPU per camera-size photo (library).")
def renditions_command(
    photos: Annotated[int, typer.Option(min=1, help="Photos per size (after a warm-up).")] = 6,
    save: Save = True,
) -> None:
    from bench import renditions

    result = renditions.run(photos)
    if save:
        typer.echo(f"saved {report.save('renditions', result)}", err=True)
    for row in result["rows"]:
        typer.echo(
            f"{row['size']} {row['format']}: renditions {row['renditions_ms']} ms, "
            f"{row['share']:.1%} of decode + faces"
        )


@app.command("all")
def all_suites(
    dataset: Dataset = LFW,
    group: Group = GROUP,
    configured: Configured = False,
    keep: Keep = False,
    save: Save = True,
    skip: Annotated[
        list[str] | None, typer.Option(help=f"Suites not to run: {', '.join(SUITES)}.")
    ] = None,
    quick: Annotated[bool, typer.Option(help="Smaller sizes (a few minutes).")] = False,
    write_report: Annotated[bool, typer.Option("--report/--no-report")] = True,
) -> None:
    """Every suite in order (accuracy, calibration, multi-selfie, ep, pipeline, load, scale,
    peer, crowd, renditions, vectors), then docs/benchmarks.md and the plots."""
    unknown = set(skip or ()) - set(SUITES)
    if unknown:
        typer.echo(f"unknown suites: {', '.join(sorted(unknown))}", err=True)
        raise typer.Exit(2)
    chosen = set(SUITES) - set(skip or ())
    _run(
        chosen,
        dataset=dataset,
        group=group,
        configured=configured,
        keep=keep,
        save=save,
        quick=quick,
    )
    if write_report and save:
        report_command()


@app.command("report")
def report_command(
    out: Annotated[Path, typer.Option(help="The Markdown report.")] = Path("docs/benchmarks.md"),
) -> None:
    """docs/benchmarks.md and docs/bench/*.png from docs/bench/*.json (renders only: runs no
    suite)."""
    from bench import markdown

    written = markdown.write(out, report.BENCH_DIR)
    for path in written:
        typer.echo(f"wrote {path}")


cli_engine.register(app)  # eval, eval-crowd, faces


def main() -> None:
    app()
