"""Benchmarks of the face engine on the library level: LFW-Events, LFW-Crowd, bench faces.

Protocols are ../shared/BENCHMARKS.md's; the CLI is facepass/cli/faces_cmd.py.
"""
