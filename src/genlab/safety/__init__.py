"""Responsible use: model cards now; watermarks, provenance and content filters as they come."""
