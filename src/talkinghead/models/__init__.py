"""Networks: embedder, generator, discriminator and their building blocks."""
