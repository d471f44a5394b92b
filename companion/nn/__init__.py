"""PyTorch modules written from scratch (imports torch; ``import companion`` does not)."""
