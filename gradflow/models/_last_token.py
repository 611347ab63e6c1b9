"""Shared pieces of the one-layer models whose query is the last token of a padded sequence
(next-token prediction, regular languages)."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from gradflow.errors import ArgumentError
from gradflow.layout import Layout
from gradflow.model import Model
from gradflow.models._validate import generator, integer
from gradflow.numerics import log_softmax

__all__ = ["LastTokenModel", "padding_mask"]


def padding_mask(lengths: np.ndarray, width: int) -> np.ndarray:
    """``mask[n, l]``: position l < lengths[n] holds a real token; shape (N, width)."""
    return np.arange(width)[None, :] < np.asarray(lengths)[:, None]


class LastTokenModel(Model):
    """Base of models with two (d-dimensional) blocks, attention queried by the last token of
    padded sequences, and ``"zero"``/``"normal"`` initialisations.

    Subclasses set :attr:`data_type` and :attr:`default_scale` and call ``super().__init__``
    with their block shapes; data objects provide ``X`` (N, L, d), ``Q`` (N, d), ``mask``
    (N, L), ``n`` and ``d``.
    """

    data_type: ClassVar[type]
    default_scale: ClassVar[float] = 1.0

    def __init__(self, d: int, blocks: dict[str, tuple[int, ...]]):
        self.d = integer(d, "d")
        self._layout = Layout(blocks)

    @property
    def layout(self) -> Layout:
        return self._layout

    def init(self, rng: Any = None, preset: str = "zero", scale: float | None = None) -> np.ndarray:
        """``"zero"`` (the papers' initialisation: uniform attention, zero output) or
        ``"normal"`` (entries N(0, scale²), default :attr:`default_scale`)."""
        if preset == "zero":
            return self.layout.zeros()
        if preset == "normal":
            scale = self.default_scale if scale is None else scale
            return scale * generator(rng).standard_normal(self.layout.size)
        raise ArgumentError(f"preset must be 'zero' or 'normal', got {preset!r}")

    def check_data(self, data: Any) -> None:
        if not isinstance(data, self.data_type):
            raise ArgumentError(
                f"data must be a {self.data_type.__name__}, got {type(data).__name__}"
            )
        if data.d != self.d:
            raise ArgumentError(f"data embeddings have d={data.d}, the model has d={self.d}")

    @staticmethod
    def log_attention(data: Any, W: np.ndarray, scale: float = 1.0) -> np.ndarray:
        """log softmax over real positions of the scores x_lᵀ W q / scale, −inf on padding;
        shape (N, L)."""
        scores = np.einsum("nld,nd->nl", data.X, data.Q @ W.T) / scale  # x_lᵀ (W q)
        return log_softmax(np.where(data.mask, scores, -np.inf), axis=1)
