"""`facepass index DIR --session S`: index a folder of photos through the same path as any
client — POST /api/v2/index (default) or, like an upstream system, S3 + `photos.uploaded`.

Photo ids come from the file paths (relative to DIR, without the extension, characters outside
the id alphabet replaced). A journal in the state directory records each accepted file with its
content hash, so a rerun after an interruption skips what was already accepted; the server also
answers a re-sent identical photo as a no-op.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from libs.common.events import ObjectRef, PhotoUploaded
from libs.common.runtime import create_broker
from libs.common.settings import Settings
from libs.common.storage import ObjectStore, photo_object_key

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".heic", ".heif"}
_NOT_ID = re.compile(r"[^A-Za-z0-9._:-]+")


def photo_id_for(path: Path, root: Path) -> str:
    """A valid, stable photo id for a file: its relative path, sanitised, ≤ 128 characters."""
    stem = str(path.relative_to(root).with_suffix("")).replace("/", "_")
    clean = _NOT_ID.sub("_", stem).strip("._:-") or "photo"
    clean = clean.replace("..", "_")
    if len(clean) > 128:
        digest = hashlib.sha256(stem.encode()).hexdigest()[:16]
        clean = f"{clean[:111]}-{digest}"
    return clean


def find_photos(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


@dataclass
class Summary:
    accepted: int = 0
    duplicates: int = 0
    skipped: int = 0  # already in the journal
    rejected: Counter[str] = field(default_factory=Counter)

    def lines(self) -> list[str]:
        out = [
            f"accepted:  {self.accepted}",
            f"unchanged: {self.duplicates} (already queued or indexed)",
            f"resumed:   {self.skipped} (accepted by an earlier run)",
            f"rejected:  {sum(self.rejected.values())}",
        ]
        out += [f"  {count:>5}  {reason}" for reason, count in self.rejected.most_common()]
        return out


class Journal:
    """Accepted files of one session, one JSON line each."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.done: set[tuple[str, str]] = set()
        if path.exists():
            for line in path.read_text().splitlines():
                entry = json.loads(line)
                self.done.add((entry["photo_id"], entry["sha256"]))

    def record(self, photo_id: str, sha256: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as f:
            f.write(json.dumps({"photo_id": photo_id, "sha256": sha256}) + "\n")
        self.done.add((photo_id, sha256))


@dataclass(frozen=True)
class Job:
    path: Path
    photo_id: str
    data: bytes
    sha256: str


Send = Callable[[Job], Awaitable[str]]


async def _send_http(client: httpx.AsyncClient, session_id: str, job: Job) -> str:
    """'accepted', 'duplicate' or a rejection reason."""
    response = await client.post(
        "/api/v2/index",
        data={"photo_id": job.photo_id, "session_id": session_id},
        files={"file": (job.path.name, job.data)},
    )
    if response.status_code == 202:
        return "duplicate" if response.json().get("duplicate") else "accepted"
    try:
        problem = response.json().get("type", "")
    except ValueError:
        problem = ""
    return f"{response.status_code} {problem}".strip()


async def index_folder(
    settings: Settings,
    root: Path,
    session_id: str,
    *,
    base_url: str | None,
    api_key: str | None,
    concurrency: int = 4,
    progress: Callable[[int], None] = lambda _: None,
    photos: list[Path] | None = None,
    naming: Callable[[Path], str] | None = None,
) -> Summary:
    """Index every photo under `root` (or the given `photos` under it): over HTTP when
    `base_url` is given, else by direct publish."""
    journal = Journal(settings.stack.state_dir / "index-journal" / f"{session_id}.jsonl")
    summary = Summary()
    slots = asyncio.Semaphore(concurrency)

    async def one(path: Path, send: Send) -> None:
        async with slots:
            data = await asyncio.to_thread(path.read_bytes)
            photo_id = naming(path) if naming else photo_id_for(path, root)
            job = Job(path, photo_id, data, hashlib.sha256(data).hexdigest())
            if (job.photo_id, job.sha256) in journal.done:
                summary.skipped += 1
            else:
                outcome = await send(job)
                if outcome in ("accepted", "duplicate"):
                    journal.record(job.photo_id, job.sha256)
                    if outcome == "accepted":
                        summary.accepted += 1
                    else:
                        summary.duplicates += 1
                else:
                    summary.rejected[outcome] += 1
            progress(1)

    photos = photos if photos is not None else find_photos(root)
    if base_url is not None:
        headers = {"X-API-Key": api_key} if api_key else {}
        async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=60) as client:

            async def over_http(job: Job) -> str:
                return await _send_http(client, session_id, job)

            await asyncio.gather(*(one(path, over_http) for path in photos))
    else:
        store = await ObjectStore(settings.s3).open()
        broker = create_broker(settings)
        await broker.start()
        try:

            async def direct(job: Job) -> str:
                key = photo_object_key(session_id, job.photo_id, job.sha256)
                await store.put(key, job.data, "application/octet-stream")
                event = PhotoUploaded(
                    photo_id=job.photo_id,
                    session_id=session_id,
                    object=ObjectRef(bucket=store.bucket, key=key),
                    content_sha256=job.sha256,
                    size_bytes=len(job.data),
                    source="facepass-index",
                )
                await broker.publish(
                    event.model_dump(mode="json"),
                    topic=settings.kafka.topic_uploaded,
                    key=job.photo_id.encode(),
                )
                return "accepted"

            await asyncio.gather(*(one(path, direct) for path in photos))
        finally:
            await broker.stop()
            await store.close()
    return summary
