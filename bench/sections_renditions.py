"""The renditions section of docs/benchmarks.md: what thumbnails and previews cost the embedder
per camera-size photo (bench/renditions.py; see markdown.py)."""

from __future__ import annotations

from bench.sections import Results, provenance


def renditions(results: Results, images: set[str]) -> list[str]:
    r = results["renditions"]
    target = r["target_share"]
    lines = [
        "## Renditions — thumbnails and previews (library, one core)",
        "",
        provenance(r),
        "",
        "CPU time per photo of the embedder's reduced decode, the face engine (whole-photo and "
        "detail passes) and `make_renditions` (a 1600 px preview and a 400 px thumbnail) on the "
        "same pixels; share = renditions / (decode + faces). Camera-like JPEGs (bench/"
        f"renditions.py). Goal (issue 15): share ≤ {target:.0%} with the shipped format.",
        "",
        "| photo | JPEG MB | format | photos | decode ms | faces ms | renditions ms | share |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in r["rows"]:
        share = f"{row['share']:.1%}"
        if row["share"] > target:
            share = f"**{share}**"
        lines.append(
            f"| {row['size']} ({row['megapixels']} MP) | {row['jpeg_mb']:.1f} | {row['format']} "
            f"| {row['photos']} | {row['decode_ms']:.0f} | {row['faces_ms']:.0f} "
            f"| {row['renditions_ms']:.1f} | {share} |"
        )
    lines += [
        "",
        "JPEG (the default, RENDITION_FORMAT) stays well under the goal; WebP previews are "
        "smaller but their encoder costs a large share of a photo's indexing, so it is an "
        "operator's choice for bandwidth-starved venues, not the default.",
        "",
    ]
    return lines
