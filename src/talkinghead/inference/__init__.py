"""Video-to-video pipelines built on the models and the face tools."""
