"""Helpers for tests that run the embedded real stack."""
