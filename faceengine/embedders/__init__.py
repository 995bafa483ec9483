"""Face embedders: one interface (base.Embedder), several backends, built by name (registry)."""

from .base import Embedder, InputConvention
from .registry import ModelSpec, build_embedder, load_model_spec

__all__ = ["Embedder", "InputConvention", "ModelSpec", "build_embedder", "load_model_spec"]
