"""PNG plots of the saved results (matplotlib, the `bench` extra): the A1/P5 threshold sweeps,
P2's latency percentiles by concurrency, and the throughput comparisons of P1, P2, P4 and P5.
The limit lines are the goals' (goals.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench import goals

Results = dict[str, dict[str, Any]]


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def sweep(results: Results, path: Path) -> Path | None:
    """Precision and recall against the threshold: ours through HTTP, and the peer."""
    ours = results.get("accuracy", {}).get("lfw_events")
    if not ours:
        return None
    peer = results.get("peer", {}).get("peer")
    plt = _pyplot()
    panels = 2 if peer else 1
    fig, axes = plt.subplots(1, panels, figsize=(6 * panels, 4), squeeze=False)
    ax = axes[0][0]
    rows = ours["sweep"]
    ax.plot([r["threshold"] for r in rows], [r["precision"] for r in rows], label="precision")
    ax.plot([r["threshold"] for r in rows], [r["recall"] for r in rows], label="recall")
    ax.axvline(ours["shipped_threshold"], color="gray", linestyle="--", label="shipped")
    a1 = goals.BY_ID["A1"]
    for key, color in (("worst_precision", "tab:blue"), ("mean_recall", "tab:orange")):
        ax.axhline(a1.limit(key).value, color=color, linestyle=":", linewidth=0.8)
    ax.set(title="FacePass via HTTP (LFW-Events)", xlabel="cosine threshold", ylim=(0.5, 1.005))
    ax.legend(loc="lower left")
    if peer:
        ax = axes[0][1]
        rows = peer["sweep"]
        ax.plot([r["tolerance"] for r in rows], [r["precision"] for r in rows], label="precision")
        ax.plot([r["tolerance"] for r in rows], [r["recall"] for r in rows], label="recall")
        tolerance = peer["at_tolerance"]["tolerance"]
        ax.axvline(tolerance, color="gray", linestyle="--", label=f"default {tolerance}")
        ax.set(title="face_recognition (dlib)", xlabel="distance tolerance", ylim=(0.0, 1.005))
        ax.legend(loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def latency(results: Results, path: Path) -> Path | None:
    """p50/p95/p99 by concurrency, distinct vs repeated selfies, log scale."""
    levels = results.get("load", {}).get("levels")
    if not levels:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    conns = [lv["connections"] for lv in levels]
    for kind, style in (("uncached", "-"), ("cached", "--")):
        for pct, marker in (("p50", "o"), ("p95", "s"), ("p99", "^")):
            values = [lv[kind][f"{pct}_ms"] for lv in levels]
            label = f"{pct} {'distinct' if kind == 'uncached' else 'repeated'}"
            ax.plot(conns, values, linestyle=style, marker=marker, label=label)
    colors = ("red", "purple", "brown")
    for i, goal in enumerate(goals.for_suite("load")):
        p95 = goal.limit("p95_ms")
        ax.axhline(
            p95.value, color=colors[i % 3], linestyle=":", linewidth=0.8,
            label=f"{goal.id} {p95.text()}",
        )  # fmt: skip
    ax.set(xscale="log", yscale="log", xlabel="concurrent connections", ylabel="latency (ms)")
    ax.set_xticks(conns, [str(c) for c in conns])
    ax.set_title("POST /api/v2/search under load (wrk)")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def throughput(results: Results, path: Path) -> Path | None:
    """One bar pair per comparison that was measured."""
    pairs: list[tuple[str, list[str], list[float]]] = []
    if p := results.get("pipeline"):
        pairs.append(
            (
                "P1 indexing photos/s",
                ["raw engine", "end to end"],
                [p["raw_photos_per_s"], p["end_to_end"]["photos_per_s"]],
            )
        )
    if s := results.get("scale"):
        pairs.append(
            (
                "P4 indexing photos/s",
                ["1 embedder", "2 embedders"],
                [s["one_embedder"]["photos_per_s"], s["two_embedders"]["photos_per_s"]],
            )
        )
    if q := results.get("peer"):
        pairs.append(
            (
                "P5 photos per CPU-second",
                ["dlib", "FacePass"],
                [q["peer"]["photos_per_cpu_s"], q["ours"]["photos_per_cpu_s"]],
            )
        )
    if (ld := results.get("load")) and ld.get("levels"):
        best = max(lv["uncached"]["ok_per_s"] for lv in ld["levels"])
        pairs.append(
            (
                "P2 uncached searches/s",
                ["model bound", "best measured"],
                [ld["model_bound"]["limit_req_per_s"], best],
            )
        )
    if not pairs:
        return None
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(pairs), figsize=(3.2 * len(pairs), 3.6), squeeze=False)
    for ax, (title, labels, values) in zip(axes[0], pairs, strict=True):
        bars = ax.bar(labels, values, color=["tab:gray", "tab:blue"])
        ax.bar_label(bars, fmt="%.2f", fontsize=8)
        ax.set_title(title, fontsize=9)
        ax.tick_params(labelsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def available() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def write_all(results: Results, folder: Path) -> list[Path]:
    """Every plot that the results allow; returns the files written (none without
    matplotlib, which is in the `bench` extra, not in the product's dependencies)."""
    if not available():
        return []
    made = [
        sweep(results, folder / "a1-sweep.png"),
        latency(results, folder / "p2-latency.png"),
        throughput(results, folder / "throughput.png"),
    ]
    return [p for p in made if p is not None]
