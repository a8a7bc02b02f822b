"""wrk (https://github.com/wg/wrk) driving POST /api/v2/search with multipart bodies.

wrk cannot send a different file per request by itself; the Lua script below loads prepared
multipart bodies (one file each) and rotates through them, each wrk thread over its own share,
so with as many bodies as requests no selfie is sent twice. It counts statuses in `response()`
and prints one JSON line from `done()`. wrk runs for a fixed duration (`-d`), not a request
count: the `ab -n 1000 -c 10` of the seed becomes "as many requests as fit in D seconds".
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BOUNDARY = "facepassbenchboundary7MA4YWxkTrZu0gW"
MARKER = "BENCH_JSON "

LUA = r"""
threads = {}

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

function init(args)
  local dir, count, nthreads = args[1], tonumber(args[2]), tonumber(args[3])
  bodies = {}
  for i = 0, count - 1 do
    if i % nthreads == id then
      local f = assert(io.open(string.format("%s/body-%06d.bin", dir, i), "rb"))
      table.insert(bodies, f:read("*a"))
      f:close()
    end
  end
  nxt, ok, limited, retry_after, unprocessable, other = 0, 0, 0, 0, 0, 0
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "multipart/form-data; boundary=" .. args[4]
end

function request()
  nxt = nxt % #bodies + 1
  return wrk.format(nil, "/api/v2/search", nil, bodies[nxt])
end

function response(status, headers, body)
  if status == 200 then ok = ok + 1
  elseif status == 429 then
    limited = limited + 1
    if headers["Retry-After"] or headers["retry-after"] then retry_after = retry_after + 1 end
  elseif status == 422 then unprocessable = unprocessable + 1
  else other = other + 1 end
end

function done(summary, latency, requests)
  local t = {ok = 0, limited = 0, retry_after = 0, unprocessable = 0, other = 0}
  for _, thread in ipairs(threads) do
    for k, _ in pairs(t) do t[k] = t[k] + thread:get(k) end
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"ok":%d,"status_429":%d,' ..
    '"status_429_with_retry_after":%d,"status_422":%d,"status_other":%d,' ..
    '"socket_errors":%d,"timeouts":%d,"p50_us":%d,"p95_us":%d,"p99_us":%d,' ..
    '"mean_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, t.ok, t.limited, t.retry_after, t.unprocessable,
    t.other, e.connect + e.read + e.write, e.timeout, latency:percentile(50),
    latency:percentile(95), latency:percentile(99), latency.mean, latency.max))
end
"""


def multipart(session_id: str, selfie: bytes) -> bytes:
    head = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="session_id"\r\n\r\n'
        f"{session_id}\r\n--{BOUNDARY}\r\n"
        'Content-Disposition: form-data; name="file"; filename="selfie.jpg"\r\n'
        "Content-Type: image/jpeg\r\n\r\n"
    ).encode()
    return head + selfie + f"\r\n--{BOUNDARY}--\r\n".encode()


@dataclass(frozen=True)
class Bodies:
    folder: Path
    count: int


def write_bodies(folder: Path, session_id: str, selfies: list[bytes]) -> Bodies:
    folder.mkdir(parents=True, exist_ok=True)
    for i, selfie in enumerate(selfies):
        (folder / f"body-{i:06d}.bin").write_bytes(multipart(session_id, selfie))
    (folder / "search.lua").write_text(LUA)
    return Bodies(folder, len(selfies))


def available() -> bool:
    return shutil.which("wrk") is not None


def run(base_url: str, bodies: Bodies, *, connections: int, duration_s: int) -> dict[str, Any]:
    """One wrk run; the counts and latency percentiles (ms) it reports, plus req/s."""
    threads = max(1, min(2, connections, bodies.count))
    command = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{duration_s}s",
        "--timeout",
        "30s",
        "-s",
        str(bodies.folder / "search.lua"),
        base_url,
        "--",
        str(bodies.folder),
        str(bodies.count),
        str(threads),
        BOUNDARY,
    ]
    out = subprocess.run(
        command, capture_output=True, text=True, timeout=duration_s + 120, check=True
    ).stdout
    line = next(ln for ln in out.splitlines() if ln.startswith(MARKER))
    raw: dict[str, int] = json.loads(line[len(MARKER) :])
    seconds = raw["duration_us"] / 1e6
    result: dict[str, Any] = {k: v for k, v in raw.items() if not k.endswith("_us")}
    result.update(
        {
            name.removesuffix("_us") + "_ms": round(raw[name] / 1000, 1)
            for name in ("p50_us", "p95_us", "p99_us", "mean_us", "max_us")
        }
    )
    result.update(
        connections=connections,
        wrk_threads=threads,
        duration_s=round(seconds, 2),
        req_per_s=round(raw["requests"] / seconds, 2) if seconds else 0.0,
        ok_per_s=round(raw["ok"] / seconds, 2) if seconds else 0.0,
        command=" ".join(command[:-5]) + " -- BODIES_DIR N THREADS BOUNDARY",
    )
    return result
