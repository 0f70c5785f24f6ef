"""Shared data pieces: fonts, scenes, JSONL helpers and the `data build` command."""
