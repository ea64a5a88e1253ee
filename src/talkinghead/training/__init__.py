"""Training: meta-learning, fine-tuning, checkpoints."""
