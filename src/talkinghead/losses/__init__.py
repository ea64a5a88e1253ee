"""Losses: perceptual content loss, adversarial hinge loss, feature matching, embedding match."""
