"""Presenters: one module per kind of output the commands print (tables, summary lines, `--json`
documents); the library returns results, these turn them into text."""
