"""Reliability and security suite (issue 9): crashes, restarts, poison input, fuzzing, load and
security checks against the embedded real stack. See docs/reliability.md."""
