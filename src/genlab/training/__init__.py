"""The one training loop, its configuration, checkpoints and distributed set-up."""
