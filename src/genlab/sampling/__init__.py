"""Sampling controls shared by families: logits processors and generation loops."""
