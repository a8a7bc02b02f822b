"""`facepass bench`: the suites of ../shared/BENCHMARKS.md, each writing docs/bench/<suite>.json,
and `facepass bench report`, which turns them into docs/benchmarks.md."""
