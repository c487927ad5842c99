"""Metrics per modality."""
