"""A1 — LFW-Events through the running service's HTTP API, and the group photos set.

The collages are indexed with POST /api/v2/index into one session and every selfie is searched
with POST /api/v2/search. To get the whole threshold sweep from one search per selfie, the search
asks for the sweep's lowest threshold (the bench server runs with SEARCH_MIN_THRESHOLD lowered to
allow it) and a limit above the session's photo count; the sweep then filters the returned
similarities client-side. A few selfies are also searched at the server's default threshold to
check that the client-side filter gives the same photos as the server's own. With query
expansion (shipped on) such a filter is exact only up to the strict threshold, so the sweep
stops there (`bench.harness.sweep_top`).

The scores use the library protocol (`bench.protocols.lfw_events`), so HTTP and library
figures are computed the same way; what differs is the path: ingest, Kafka, the embedder,
PostgreSQL + pgvector and the search API.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bench import data
from bench.client import IndexRun, Selfie, index_photos, search, unique
from bench.harness import ALL_SERVER_ENV, SWEEP_FLOOR, Bench, Server, sweep_top
from bench.protocols import lfw_events

LIMIT = 1000  # the API's maximum; above every session indexed here
CHECKED_SELFIES = 10


@dataclass
class SearchStats:
    """What the sweep's searches took (client-side wall time of each request, ms) and how many
    answers said their query was expanded (`query_expansion.used`)."""

    ms: list[float] = field(default_factory=list)
    expanded: int = 0

    def summary(self) -> dict[str, Any]:
        if not self.ms:
            return {"searches": 0, "expanded": self.expanded}
        p50, p95 = np.percentile(self.ms, [50, 95])
        return {
            "searches": len(self.ms),
            "p50_ms": round(float(p50), 1),
            "p95_ms": round(float(p95), 1),
            "expanded": self.expanded,
        }


def similarities(
    server: Server,
    session_id: str,
    selfies: Sequence[Selfie],
    photo_ids: list[str],
    stats: SearchStats | None = None,
    threshold: float | None = SWEEP_FLOOR,
) -> tuple[np.ndarray[Any, np.dtype[np.float32]], list[int], float]:
    """Rows: selfies (each one selfie, or several of one person searched as one), columns:
    photos; -1 where not returned. Also the rows with no face (422 no-face) and the server's
    default threshold. Each row is searched at `threshold` (the sweep's floor unless said;
    None: the server's default, asking none). `stats`, when given, collects the searches'
    times."""
    column = {photo_id: i for i, photo_id in enumerate(photo_ids)}
    similarity = np.full((len(selfies), len(photo_ids)), -1.0, np.float32)
    no_face: list[int] = []
    asked = {} if threshold is None else {"threshold": threshold}
    defaults: set[float] = set()
    with server.client() as client:
        if threshold is not None:
            defaults.add(float(search(client, session_id, selfies[0]).json().get("threshold", 0)))
        for row, selfie in enumerate(selfies):
            start = time.perf_counter()
            response = search(client, session_id, selfie, **asked, limit=LIMIT)
            if stats is not None:
                stats.ms.append((time.perf_counter() - start) * 1000)
            if response.status_code == 422 and response.json().get("type", "").endswith("no-face"):
                no_face.append(row)
                continue
            response.raise_for_status()
            answer = response.json()
            if threshold is None:
                defaults.add(float(answer["threshold"]))
            if stats is not None and answer.get("query_expansion", {}).get("used"):
                stats.expanded += 1
            for result in answer["results"]:
                if result["photo_id"] in column:
                    similarity[row, column[result["photo_id"]]] = result["similarity"]
    if len(defaults) != 1:
        raise RuntimeError(f"the server's default threshold is not one: {sorted(defaults)}")
    return similarity, no_face, defaults.pop()


def http_scores(
    identities: list[str],
    similarity: np.ndarray[Any, np.dtype[np.float32]],
    no_face: list[int],
    truth: list[frozenset[str]],
    run: IndexRun,
) -> lfw_events.Scores:
    """The LFW-Events scores of searches made over HTTP (`similarities`) against a session
    indexed over HTTP (`run`), with `truth` per photo."""
    return lfw_events.Scores(
        identities=identities,
        similarity=similarity,
        relevant=np.array([[n in t for t in truth] for n in identities], dtype=bool),
        selfies_without_face=[identities[i] for i in no_face],
        photos_faces=sum(int(e.get("faces_indexed", 0)) for e in run.indexed.values()),
    )


def pack_of(run: IndexRun) -> str:
    """The model pack id the embedder recorded for the photos of `run`."""
    return next((str(e.get("model_id")) for e in run.indexed.values()), "unknown")


def scored(
    identities: list[str],
    similarity: np.ndarray[Any, np.dtype[np.float32]],
    no_face: list[int],
    truth: list[frozenset[str]],
    run: IndexRun,
    threshold: float,
    parameters: dict[str, Any],
) -> dict[str, Any]:
    """The LFW-Events report of `http_scores`."""
    scores = http_scores(identities, similarity, no_face, truth, run)
    return lfw_events.report(
        scores, threshold=threshold, parameters=parameters, pack_id=pack_of(run),
        top=sweep_top(ALL_SERVER_ENV),
    )  # fmt: skip


@dataclass(frozen=True)
class HttpDraw:
    """One LFW-Events draw indexed into its own session over HTTP and every selfie searched."""

    session_id: str
    photo_ids: list[str]
    selfies: list[bytes]
    run: IndexRun
    cpu_s: float  # of the server and the stack while indexing
    scores: lfw_events.Scores
    default: float  # the server's default threshold
    pack: str


def http_draw(
    bench: Bench,
    server: Server,
    protocol: lfw_events.Protocol,
    prefix: str,
    progress: Callable[[str], None],
    label: str = "A1",
    stats: SearchStats | None = None,
    threshold: float | None = SWEEP_FLOOR,
) -> HttpDraw:
    """Index `protocol`'s collages in a new session (`prefix`-...), search its selfies (each
    attendee's first image) once each at `threshold` (the sweep's floor unless said; None:
    the server's default) and score them (`stats`: see `similarities`)."""
    session_id = unique(prefix)
    assert min(lfw_events.default_thresholds()) >= SWEEP_FLOOR
    photo_ids = [f"{session_id}-c{i:04d}" for i in range(len(protocol.collages))]
    progress(f"{label}: indexing {len(photo_ids)} collages over HTTP")
    pids = (server.process.pid,)
    cpu0 = bench.cpu_seconds(*pids)
    run = asyncio.run(
        index_photos(
            bench, server, session_id, list(zip(photo_ids, protocol.collages, strict=True))
        )
    )
    cpu = bench.cpu_seconds(*pids) - cpu0
    identities = sorted(protocol.selfies)
    selfies = [protocol.selfies[name].read_bytes() for name in identities]
    progress(f"{label}: searching {len(selfies)} selfies")
    similarity, no_face, default = similarities(
        server, session_id, selfies, photo_ids, stats, threshold
    )
    scores = http_scores(identities, similarity, no_face, protocol.truth, run)
    return HttpDraw(session_id, photo_ids, selfies, run, cpu, scores, default, pack_of(run))


def _server_filter_agrees(
    server: Server,
    session_id: str,
    selfies: list[bytes],
    photo_ids: list[str],
    similarity: np.ndarray[Any, np.dtype[np.float32]],
    threshold: float,
) -> dict[str, int]:
    checked = agree = 0
    with server.client() as client:
        for row, selfie in enumerate(selfies[:CHECKED_SELFIES]):
            response = search(client, session_id, selfie, limit=LIMIT)
            if response.status_code != 200:
                continue
            server_side = {r["photo_id"] for r in response.json()["results"]}
            client_side = {photo_ids[c] for c in np.flatnonzero(similarity[row] >= threshold)}
            checked += 1
            agree += server_side == client_side
    return {"selfies_checked": checked, "same_photos": agree}


def _throughput(run: IndexRun, cpu_s: float) -> dict[str, Any]:
    return {
        "photos": run.photos,
        "indexed": len(run.indexed),
        "failed": len(run.failed),
        "wall_s": round(run.wall_s, 2),
        "photos_per_s": round(run.photos_per_s, 3),
        "cpu_s": round(cpu_s, 1),
        "photos_per_cpu_s": round(len(run.indexed) / cpu_s, 3) if cpu_s else None,
    }


def lfw_events_http(
    bench: Bench,
    server: Server,
    dataset: Path,
    params: data.EventsParams,
    progress: Callable[[str], None],
) -> dict[str, Any]:
    drawn = http_draw(bench, server, data.events(dataset, params), "a1", progress)
    result = lfw_events.report(
        drawn.scores, threshold=drawn.default, parameters=params.as_dict(), pack_id=drawn.pack,
        top=sweep_top(ALL_SERVER_ENV),
    )  # fmt: skip
    result["shipped_threshold"] = drawn.default
    result["server_filter_check"] = _server_filter_agrees(
        server, drawn.session_id, drawn.selfies, drawn.photo_ids, drawn.scores.similarity,
        drawn.default,
    )  # fmt: skip
    result["indexing"] = _throughput(drawn.run, drawn.cpu_s)
    return result


def group_photos(bench: Bench, server: Server, group: Path) -> dict[str, Any]:
    """Every reference photo of the 5 people searched among the group photos (the two crowd
    shots count as photos none of them is in)."""
    references, truth = data.group_set(group)
    session_id = unique("a1g")
    names = sorted(truth)
    ids = {name: f"{session_id}-{Path(name).stem}" for name in names}
    run = asyncio.run(
        index_photos(bench, server, session_id, [(ids[n], (group / n).read_bytes()) for n in names])
    )
    tp = fp = fn = 0
    misses: list[str] = []
    false_hits: list[str] = []
    default = 0.0
    with server.client() as client:
        for person, files in references.items():
            for file in files:
                response = search(client, session_id, file.read_bytes(), limit=LIMIT)
                response.raise_for_status()
                default = float(response.json()["threshold"])
                returned = {r["photo_id"] for r in response.json()["results"]}
                for name in names:
                    hit, relevant = ids[name] in returned, person in truth[name]
                    tp += hit and relevant
                    fp += hit and not relevant
                    fn += relevant and not hit
                    if relevant and not hit:
                        misses.append(f"{file.parent.name}/{file.name} → {name}")
                    if hit and not relevant:
                        false_hits.append(f"{file.parent.name}/{file.name} → {name}")
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    return {
        "photos": len(names),
        "faces_indexed": sum(int(e.get("faces_indexed", 0)) for e in run.indexed.values()),
        "references": sum(len(v) for v in references.values()),
        "people": len(references),
        "threshold": default,
        "precision": precision,
        "recall": recall,
        "f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "misses": misses,
        "false_hits": false_hits,
    }


def run(
    bench: Bench,
    server: Server,
    *,
    dataset: Path,
    params: data.EventsParams,
    group: Path | None,
    progress: Callable[[str], None],
) -> dict[str, Any]:
    """A1 on the bench's `all` server (SEARCH_MIN_THRESHOLD lowered to the sweep's floor)."""
    result: dict[str, Any] = {
        "lfw_events": lfw_events_http(bench, server, dataset, params, progress)
    }
    if group is not None and data.group_available(group):
        progress("A1: group photos")
        result["group"] = group_photos(bench, server, group)
    return result
