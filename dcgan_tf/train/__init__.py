"""A training run: the run itself, its callbacks, checkpoints, checks before it starts, and distribution."""
