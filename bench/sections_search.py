"""The search sections of docs/benchmarks.md: P2 (search under load) and P3 (vector scale); see
markdown.py."""

from __future__ import annotations

from typing import Any

from bench import goals
from bench.readings import c10, cores_text, server_errors
from bench.sections import Results, image, missed, provenance


def load(results: Results, images: set[str]) -> list[str]:
    r = results["load"]
    mb = r["model_bound"]
    lines = [
        f"## {', '.join(g.id for g in goals.for_suite('load'))} — search under load",
        "",
        provenance(r),
        "",
        f"Session of {r['session_photos']} photos ({r['session_faces']} faces). `wrk` "
        "(2 threads, `--timeout 30s`, a Lua script rotating prepared multipart bodies): "
        f"distinct LFW selfies ({r['distinct_selfies_per_level']} per level) on a "
        "`search-api` server of their own with the result cache off, so every request runs "
        "the model (its cache-hit counter proves it), and one repeated, cached selfie on the "
        "bench's `all` server. Durations "
        "instead of `-n`: wrk runs for a time. After each run the bench waits until the "
        "server has answered what wrk left in flight, so no run queues behind the previous "
        "one. Rate limits off.",
        "",
        f"Model-bound limit, same run: selfie model time (decode + detect + embed, one "
        f"thread) median {mb['ms_median']} ms over {mb['sample']} of these selfies → "
        f"{mb['cores']} cores ÷ {mb['ms_median']} ms = **{mb['limit_req_per_s']} searches/s**."
        + (
            f" Measured the same way with {mb['cores']} plain selfie loops (one process "
            f"each) running at once: **{mb['parallel_loops_req_per_s']} selfies/s** — what "
            "this shared machine gave the model during the run."
            if mb.get("parallel_loops_req_per_s")
            else ""
        ),
        "",
        "| c | selfies | requests | 200 | 422 no face | 429 | errors | ok/s | p50 ms | "
        "p95 ms | p99 ms | max ms | cache hits |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for lv in r["levels"]:
        for kind, label in (("uncached", "distinct"), ("cached", "repeated")):
            x = lv[kind]
            lines.append(
                f"| {lv['connections']} | {label} | {x['requests']} | {x['ok']} | "
                f"{x['status_422']} | {x['status_429']} | {server_errors(x)} | "
                f"{x['ok_per_s']} | {x['p50_ms']} | {x['p95_ms']} | {x['p99_ms']} | "
                f"{x['max_ms']} | {x['cache_hits']} |"
            )
    lines.append("")
    lines += _phone(r)
    lines += _p2_prose(results)
    if rl := r.get("rate_limit"):
        lines += [
            f"Rate limiter (separate `search-api` server at the default "
            f"{rl['limit_per_minute']}/min per client, repeated selfie, c=10, "
            f"{rl['duration_s']} s): {rl['requests']} requests, {rl['ok']} answered 200, "
            f"{rl['status_429']} answered 429 ({rl['status_429_with_retry_after']} with "
            f"Retry-After), p50 {rl['p50_ms']} ms.",
            "",
        ]
    return lines + image(images, "p2-latency.png", "P2 latency by concurrency")


def _phone(r: dict[str, Any]) -> list[str]:
    """P2 proper: 12 MP phone selfies on a cache-less `search-api` server (bench/load.py)."""
    phone = r.get("phone")
    if not phone:
        return []
    x, mb = phone["uncached"], phone["model_bound"]
    return [
        f"**P2, 12 MP phone selfies** (the Event-Photo protocol's: 3024 x 4032, half stored "
        f"rotated with an EXIF tag, {phone['bytes_mean'] / 1e6:.2f} MB mean): "
        f"{phone['selfies']} distinct ones rotated by wrk at c={phone['connections']} on a "
        "`search-api` server of their own with the result cache off, so every request ran the "
        f"model ({x['searches']} searches counted, {x['cache_hits']} cache hits): "
        f"{x['requests']} requests, {x['ok']} answered 200, {x['status_422']} 422, "
        f"{server_errors(x)} errors, {x['ok_per_s']} ok/s; p50 {x['p50_ms']} ms, "
        f"**p95 {x['p95_ms']} ms**, p99 {x['p99_ms']} ms. Model-bound limit on the same "
        f"selfies: median {mb['ms_median']} ms → {mb['cores']} cores ÷ {mb['ms_median']} ms = "
        f"{mb['limit_req_per_s']} searches/s.",
        "",
    ]


def _p2_prose(results: Results) -> list[str]:
    """Why P2s (distinct selfies) or P2b (the cached one) is missed at c=10, from the numbers."""
    r = results["load"]
    mb = r["model_bound"]
    lines: list[str] = []
    distinct, cached = goals.check_of("P2s", results), goals.check_of("P2b", results)
    u, c = c10(r, "uncached"), c10(r, "cached")
    if distinct.met is False and u is not None:
        goal_ms = distinct.goal.limit("p95_ms").value
        wait_ms = 10 / mb["limit_req_per_s"] * 1000
        if wait_ms >= goal_ms:
            model = f"so a p95 of {goal_ms} ms cannot be met on {cores_text(r)} at this model time."
        else:
            model = (
                f"from the model and the queue in front of it alone: {wait_ms / goal_ms:.0%} of "
                f"the {goal_ms} ms, and that is the mean (the p95 lies above it)."
            )
        lines += [
            f"{missed(distinct)} That is {u['p95_ms'] / goal_ms:.1f}x the goal. Two causes, "
            f"both in the numbers above. (1) The model: at the model-bound rate "
            f"({mb['limit_req_per_s']}/s, from {mb['ms_median']} ms of one core per selfie in "
            f"this run) 10 requests in flight already take {wait_ms:.0f} ms each on average "
            f"(Little's law), {model} " + _server_vs_model(r, u),
            "",
        ]
    if cached.met is False and c is not None:
        per_request_ms = 1000 / c["ok_per_s"] if c["ok_per_s"] else float("nan")
        lines += [
            f"{missed(cached)} {c['ok_per_s']} cached answers/s means ~{per_request_ms:.1f} ms "
            "of serialised work per request (one server process, one event loop, sharing the "
            "cores with wrk): a cache hit still parses the multipart upload, reads the "
            "session's version from PostgreSQL and the entry from Valkey; with 10 in flight "
            f"that alone makes ~{10 * per_request_ms:.0f} ms.",
            "",
        ]
    return lines


def _server_vs_model(r: dict[str, Any], u: dict[str, Any]) -> str:
    """Whether the server kept up with what the machine gave the model, in words."""
    mb = r["model_bound"]
    parallel = mb.get("parallel_loops_req_per_s")
    rates = ", ".join(
        f"{lv['uncached']['ok_per_s']}/s at c={lv['connections']}" for lv in r["levels"]
    )
    if parallel and u["ok_per_s"] >= 0.9 * parallel:
        return (
            f"(2) The machine: bare selfie loops in parallel got {parallel}/s during the run "
            f"(other users share these {cores_text(r)}), and the server served "
            f"{u['ok_per_s']}/s at c=10: it keeps up with the model, the model and the cores "
            f"are the limit. Uncached throughput by concurrency: {rates}; at high concurrency "
            "it falls, more requests contending for the same cores."
        )
    return (
        f"(2) The server stays below what the machine gave the model "
        f"({parallel or mb['limit_req_per_s']}/s): {rates}. Work outside the model "
        "(multipart parsing, the session lookup, presigned URLs, the event loop; wrk and the "
        f"stack's servers on the same {cores_text(r)}) is not overlapped enough; a profile of "
        "the search path under load is the next step (not done here)."
    )


def vectors(results: Results, images: set[str]) -> list[str]:
    r = results["vectors"]
    plan = r["plan"]
    memory = r.get("big_session_memory")
    big_label = f"the {plan['big_session_faces'] // 1000}k-face session"
    rows = [
        ("1k-face sessions", "SQL (what the API uses)", r["small_sessions"]),
        (big_label, "SQL", r["big_session"]),
    ]
    if memory:
        rows.append((big_label, "in memory (what the API uses)", memory))
    lines = [
        "## P3 — vector scale",
        "",
        provenance(r),
        "",
        f"{r['total_faces']:,} synthetic normalised 512-d faces: {plan['sessions']:,} sessions "
        f"of {plan['faces_per_session']} plus one of {plan['big_session_faces']:,} (loaded "
        f"in {r['load_seconds']} s), queried the way the search API queries them and checked "
        "against numpy brute force. Sessions under SEARCH_MATRIX_MIN_FACES (20,000) are "
        "searched by the exact SQL scan; bigger ones from an int8 matrix held in memory by "
        "each search process (services/search_api/matrices.py), whose scan names the candidate "
        "photos that the same SQL then compares exactly; the huge session is also timed "
        "without it.",
        "",
        "| sessions | path | queries | p50 ms | p95 ms | max ms | recall | results/query |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for label, path, x in rows:
        lines.append(
            f"| {label} | {path} | {x['queries']} | {x['p50_ms']} | {x['p95_ms']} | "
            f"{x['max_ms']} | {x['recall']} | {x['results_per_query']} |"
        )
    lines += [
        "",
        f"Plans: small session `{' / '.join(r['query_plan_small_session'])}`; big session "
        f"`{' / '.join(r['query_plan_big_session'])}`.",
        "",
    ]
    if memory:
        lines += [
            f"The huge session's matrix took {memory['load_seconds']} s to load (in the "
            f"background, after its first search; until then SQL answers) and holds "
            f"{memory['megabytes']} MB (SEARCH_MATRIX_MEMORY_MB caps the total). Before each "
            "search it applies the photos changed since its change number (no reload), so it "
            "is as new as the session and as exact as the SQL.",
            "",
        ]
    small = r["small_sessions"]["p95_ms"]
    big = (memory or r["big_session"])["p95_ms"]
    p95 = goals.BY_ID["P3"].limit("p95_ms")
    if not p95.ok(small):
        lines += [
            f"**P3 missed for ordinary sessions**: p95 {small} ms (goal {p95.text()}). "
            "The exact per-session scan reads every face row of the session from the heap; "
            "among 1M rows a 900-face session's rows are spread over as many pages.",
            "",
        ]
    if not p95.ok(big):
        lines += [f"**P3 missed for the huge session**: p95 {big} ms (goal {p95.text()}).", ""]
    return lines


def marathon(results: Results, images: set[str]) -> list[str]:
    r = results["marathon"]
    plan, memory, run, after = r["plan"], r["matrix"], r["while_indexing"], r["searchable_after"]
    lines = [
        "## P3m — a marathon: one 1M-face session searched while photos pour in",
        "",
        provenance(r),
        "",
        f"One session of {plan['faces']:,} synthetic 512-d faces (planted people, ~8 faces "
        f"each, 4 faces per photo; copied in {r['copy_seconds']} s) searched by the search "
        "API's own parts (its session matrices and per-session query, shipped SEARCH_* "
        f"settings, threshold {r['threshold']}, limit {r['limit']}) while a writer indexed "
        f"{run['photos_written']} photos into it at {run['photos_per_s']}/s with the "
        "embedder's own write (`record_indexed`), for "
        f"{plan['seconds']:g} s. One client searched planted people back to back; a prober "
        "searched each new photo by its own face from its commit until it was returned. Every "
        "answer was checked against float32 brute force over the session.",
        "",
        "| searches | p50 ms | p95 ms | max ms | exact (same photos, order within rounding) | "
        "identical order | recall | results/search |",
        "|---|---|---|---|---|---|---|---|",
        f"| {run['queries']} | {run['p50_ms']} | {run['p95_ms']} | {run['max_ms']} | "
        f"{run['same_within_rounding']}/{run['queries']} | "
        f"{run['same_photos_same_order']}/{run['queries']} | {run['recall']} | "
        f"{run['results_per_query']} |",
        "",
        f"A new photo was searchable {after['p50_s']} s (p50), {after['p95_s']} s (p95), "
        f"{after['max_s']} s (max) after its commit ({after['photos']} photos): each search "
        "first applies the photos changed since the matrix's change number.",
        "",
        f"Memory: the matrix holds {memory['megabytes']} MB (int8 rows, their scales and "
        "error bounds, the photo of each face: 524 B a face at 512-d); the process (face "
        f"engine loaded, as a search-api process) went from {memory['rss_anon_before_mb']:.0f} "
        f"MB to {memory['rss_anon_held_mb']:.0f} MB resident with it loaded, peaked at "
        f"{memory['rss_anon_peak_mb']:.0f} MB during the load ({memory['load_seconds']} s, "
        "chunk by chunk, in the background), and ended at "
        f"{memory['rss_anon_end_mb']:.0f} MB. The first search, before the load, went by SQL "
        f"in {r['first_search_by_sql_s']} s.",
        "",
    ]
    check = goals.check_of("P3m", results)
    if check.met is False:
        lines += [missed(check), ""]
    return lines


def notify(results: Results, images: set[str]) -> list[str]:
    r = results["notify"]
    cost, delay = r["matching"], r["matched_after_indexed"]
    lines = [
        "## N1 — notify me: matching in the stream",
        "",
        provenance(r),
        "",
        f"The embedder's matcher on the bench stack's PostgreSQL: {cost['photos']} photos of "
        f"{cost['faces_per_photo']} faces written into a session with "
        f"{cost['subscriptions']:,} live subscriptions ({cost['photos_matched']} matches "
        "recorded and announced), and the same photos in a session that never had one. Per "
        "photo (one primary-key lookup, the matrix product, the matches' transaction):",
        "",
        "| session | p50 ms | p95 ms |",
        "|---|---|---|",
        f"| {cost['subscriptions']:,} subscriptions | {cost['with_subscriptions']['p50_ms']} | "
        f"{cost['with_subscriptions']['p95_ms']} |",
        f"| none | {cost['without']['p50_ms']} | {cost['without']['p95_ms']} |",
        f"| **added** | **{cost['added']['p50_ms']}** | **{cost['added']['p95_ms']}** |",
        "",
        "The first photo after a subscription is made or deleted reads the session's "
        f"subscriptions again: {cost['reload_after_a_change_ms']} ms for "
        f"{cost['subscriptions']:,}.",
        "",
        f"Through the HTTP API and Kafka (an `all` server): {delay['photos']} photos of a "
        f"subscriber's person indexed, {delay['matched']} matched events; each one's record "
        "timestamp minus its photo's `photos.indexed` record's: "
        f"p50 {delay['p50_s']} s, p95 {delay['p95_s']} s, max {delay['max_s']} s (both are "
        "sent together, after the photo's write).",
        "",
    ]
    check = goals.check_of("N1", results)
    if check.met is False:
        lines += [missed(check), ""]
    return lines
