"""Training: the ArcFace margin head, backbones, data readers, the train loop and export.

Nothing here is imported by Django at start-up; every module that needs TensorFlow imports it
itself, so ``import facetrain`` stays cheap.
"""
