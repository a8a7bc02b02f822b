"""`python -m bench eval`, `eval-crowd` and `faces`: the face engine measured.

Everything runs on the library (no servers), with the face settings of the environment
(FACE_MODEL_DIR, FACE_SIMILARITY_THRESHOLD, FACE_INTRA_OP_THREADS, ...).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from tqdm import tqdm

from libs.common.face import FaceEngine
from libs.common.settings import FaceSettings

DatasetDir = Annotated[
    Path,
    typer.Argument(exists=True, file_okay=False, help="An LFW-layout dir with labels.csv."),
]
JsonOut = Annotated[Path | None, typer.Option("--json", help="Also write the report here.")]
Seed = Annotated[int, typer.Option(help="Seed of every shuffle.")]


def _write(report: dict[str, Any], path: Path | None) -> None:
    if path is not None:
        path.write_text(json.dumps(report, indent=2) + "\n")
        typer.echo(f"report written to {path}")


def _row(row: dict[str, float] | None) -> str:
    if row is None:
        return "none"
    return (
        f"threshold {row['threshold']:.2f}: precision {row['precision']:.4f} "
        f"recall {row['recall']:.4f} F1 {row['f1']:.4f} (fp {row['fp']:.0f}, fn {row['fn']:.0f})"
    )


def eval_events(
    dataset_dir: DatasetDir,
    seed: Seed = 7,
    max_ids: Annotated[int, typer.Option(help="Attendees drawn.")] = 150,
    cap: Annotated[int, typer.Option(help="Images per attendee, selfie included.")] = 8,
    distractors: Annotated[int, typer.Option(help="Distractor identities.")] = 300,
    json_out: JsonOut = None,
) -> None:
    """LFW-Events (BENCHMARKS.md): index 2x2 collages, search every selfie, sweep thresholds."""
    from bench.protocols import lfw_events

    engine = FaceEngine.from_settings(FaceSettings())
    protocol = lfw_events.build_protocol(
        dataset_dir, seed=seed, max_ids=max_ids, cap=cap, n_distractors=distractors
    )
    with tqdm(total=len(protocol.collages), desc="indexing", unit="photo", file=sys.stderr) as bar:
        scores = lfw_events.score(engine, protocol, progress=bar.update)
    parameters = {"seed": seed, "max_ids": max_ids, "cap": cap, "n_distractors": distractors}
    report = lfw_events.report(
        scores, threshold=engine.threshold, parameters=parameters, pack_id=engine.pack.id
    )
    typer.echo(
        f"pack {engine.pack.id}: {report['photos']} photos, {report['faces_indexed']} faces, "
        f"{report['selfies']} selfies ({len(report['selfies_without_face'])} without a face), "
        f"{report['relevant_pairs']} relevant pairs"
    )
    typer.echo(f"at the configured threshold  {_row(report['at_threshold'])}")
    typer.echo(f"best F1                      {_row(report['best_f1'])}")
    typer.echo(f"best recall, precision>=0.99 {_row(report['best_recall_at_precision_0.99'])}")
    typer.echo(f"best recall, precision>=.995 {_row(report['best_recall_at_precision_0.995'])}")
    typer.echo("sweep:")
    for row in report["sweep"][::2]:
        typer.echo(f"  {_row(row)}")
    _write(report, json_out)


def eval_crowd(
    dataset_dir: DatasetDir,
    face_size: Annotated[int, typer.Option(help="T: pasted tile side (160 ~ 65 px faces).")] = 160,
    seed: Seed = 7,
    json_out: JsonOut = None,
) -> None:
    """LFW-Crowd (BENCHMARKS.md): detection recall and identification in a 24 MP crowd."""
    from bench.protocols import lfw_crowd

    # Every pasted face must be indexed for the identification check.
    settings = FaceSettings().model_copy(update={"max_faces_per_photo": 5000})
    engine = FaceEngine.from_settings(settings)
    crowd = lfw_crowd.build_crowd(dataset_dir, face_size=face_size, seed=seed)
    report = {"face_size": face_size, "seed": seed, **lfw_crowd.evaluate(engine, crowd)}
    typer.echo(json.dumps(report, indent=2))
    _write(report, json_out)


def bench_faces(
    images: Annotated[
        list[Path] | None,
        typer.Argument(exists=True, dir_okay=False, help="Photos; default: insightface's t1.jpg"),
    ] = None,
    rounds: Annotated[int, typer.Option(min=1, help="Passes over the photos.")] = 3,
    json_out: JsonOut = None,
) -> None:
    """Photos/s, faces/s and ms per selfie of the raw engine, at FACE_INTRA_OP_THREADS."""
    from bench.faces import bench

    if not images:
        import insightface

        images = [Path(insightface.__file__).parent / "data" / "images" / "t1.jpg"]
    report = bench(FaceEngine.from_settings(FaceSettings()), images, rounds=rounds)
    typer.echo(json.dumps(report, indent=2))
    _write(report, json_out)


def register(app: typer.Typer) -> None:
    app.command("eval")(eval_events)
    app.command("eval-crowd")(eval_crowd)
    app.command("faces")(bench_faces)
