"""The recognition engine: plain Python + TensorFlow, no Django.

Nothing here imports TensorFlow at module import time; the heavy modules are loaded when a
detector or embedder is first built, so Django commands such as ``migrate`` stay light.
"""
