"""Placeholder until its owner lands the commands."""
