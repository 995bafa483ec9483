"""The margin head's settings, without Keras: what run records and command lines carry."""

from __future__ import annotations

from dataclasses import asdict, dataclass

__all__ = ["MarginConfig"]


@dataclass(frozen=True)
class MarginConfig:
    """Scale and margins of the head. Defaults: ArcFace with s=64, m=0.5."""

    s: float = 64.0
    m1: float = 1.0  # multiplicative angular (SphereFace)
    m2: float = 0.5  # additive angular (ArcFace)
    m3: float = 0.0  # additive cosine (CosFace)
    easy_margin: bool = False

    def __post_init__(self) -> None:
        if self.s <= 0:
            raise ValueError(f"scale s must be positive, got {self.s}")
        if self.m1 <= 0 or self.m2 < 0 or self.m3 < 0:
            raise ValueError(f"margins must be m1 > 0, m2 >= 0, m3 >= 0; got {self.m1}, {self.m2}, {self.m3}")

    def to_dict(self) -> dict:
        return asdict(self)
