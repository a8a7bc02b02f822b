"""The face engine's protocols on the library level (no servers): LFW-Events and LFW-Crowd of
../shared/BENCHMARKS.md. The suites score their HTTP runs with the same code."""
