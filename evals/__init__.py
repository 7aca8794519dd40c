"""Evaluation suite: datasets, metrics, runner."""
