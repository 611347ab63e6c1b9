"""The toolbox of the attention models: padded sequences queried by their last token, and
their token-index form.

:class:`LastTokenModel` and :func:`padding_mask` are the shared pieces of the one-layer
models whose query is the last token of a padded sequence (next-token prediction, regular
languages). :class:`TokenIndex` and :func:`softmax_positions` are the token-index form of
padded sequences whose rows are columns of an embedding matrix:

When every token x = E[:, k] is a column of E (d × K), a bilinear score xᵀ W q only depends on
the K × K matrix M = Eᵀ W E at (token, query) index pairs, and every gradient of the form
Σ_{n,l} G[n, l] x_{n,l} q_nᵀ is E B Eᵀ with B one ``np.bincount`` of G into K × K. This replaces
the (N, L, d) products of the dense form by gathers and scatters of (N, L) arrays, which is what
makes the closed-form gradients of the small last-token models cheap (``docs/performance.md``).

Real arithmetic only: this is the gradient path. The loss path (``forward``) keeps the dense,
complex-step-safe form, which is also the reference the fast gradients are tested against.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from gradflow.errors import ArgumentError
from gradflow.layout import Layout
from gradflow.model import Model
from gradflow.numerics import log_softmax
from gradflow.validate import generator, integer

__all__ = ["LastTokenModel", "TokenIndex", "padding_mask", "softmax_positions"]


class TokenIndex:
    """Index form of N padded sequences of tokens, each queried by one token.

    Arrays over positions are *position-major*, shape (L, N): reductions over the few positions
    of a sequence then run over axis 0, vectorised across the N sequences, which is several times
    faster than reducing the short trailing axis of an (N, L) array.

    Parameters
    ----------
    tokens : ndarray of int, shape (N, L)
        Embedding column of every position (any value on padding).
    mask : ndarray of bool, shape (N, L)
        True on real positions; every row has at least one.
    query : ndarray of int, shape (N,)
        Embedding column of each sequence's query.
    embedding : ndarray, shape (d, K)
        E; token k is the vector E[:, k].

    Attributes
    ----------
    tokens : ndarray of int, shape (L, N)
        The given tokens, position-major.
    query : ndarray of int, shape (N,)
    K : int
    embedding : ndarray, shape (d, K)
    one_hot : bool
        E is the identity: the conversions between weight and token space are skipped.
    pad : ndarray, shape (L, N)
        0 on real positions, −inf on padding: added to scores before a softmax.
    pair_pad : ndarray, shape (L, L, N)
        0 where positions l ≠ m are both real, −inf elsewhere (pairs of a pairwise sum).
    """

    def __init__(
        self, tokens: np.ndarray, mask: np.ndarray, query: np.ndarray, embedding: np.ndarray
    ):
        self.tokens = np.ascontiguousarray(np.asarray(tokens, dtype=np.intp).T)
        mask = np.ascontiguousarray(np.asarray(mask, dtype=bool).T)
        self.query = np.asarray(query, dtype=np.intp)
        self.embedding = np.asarray(embedding, dtype=float)
        d, self.K = self.embedding.shape
        self.one_hot = d == self.K and np.array_equal(self.embedding, np.eye(d))
        L, N = self.tokens.shape
        self.pad = np.where(mask, 0.0, -np.inf)
        pairs = mask[:, None, :] & mask[None, :, :] & ~np.eye(L, dtype=bool)[:, :, None]
        self.pair_pad = np.where(pairs, 0.0, -np.inf)
        self._pair = (self.tokens * self.K + self.query).ravel()
        self._token_column = (self.tokens * N + np.arange(N)).ravel()
        self._real = mask.astype(float)

    def token_matrix(self, W: np.ndarray) -> np.ndarray:
        """Eᵀ W E: the bilinear form W between tokens; W (d, d), result (K, K)."""
        return W if self.one_hot else (self.embedding.T @ W) @ self.embedding

    def weight_matrix(self, B: np.ndarray) -> np.ndarray:
        """E B Eᵀ: a token-pair scatter B (K, K) back to a weight gradient (d, d)."""
        return B if self.one_hot else (self.embedding @ B) @ self.embedding.T

    def token_vector(self, u: np.ndarray) -> np.ndarray:
        """Eᵀ u, shape (K,)."""
        return u if self.one_hot else self.embedding.T @ u

    def weight_vector(self, b: np.ndarray) -> np.ndarray:
        """E b: a token scatter b (K,) back to a weight gradient (d,)."""
        return b if self.one_hot else self.embedding @ b

    def scores(self, M: np.ndarray) -> np.ndarray:
        """``M[token, query]`` at every position, −inf on padding; shape (L, N).

        M : ndarray, shape (K, K)
        """
        return M.ravel()[self._pair].reshape(self.tokens.shape) + self.pad

    def gather(self, v: np.ndarray) -> np.ndarray:
        """``v[token]`` at every position, 0 on padding; v shape (K,), result (L, N)."""
        return v[self.tokens] * self._real

    def gather_columns(self, A: np.ndarray) -> np.ndarray:
        """``A[token[l, n], n]`` (padding included); A shape (K, N), result (L, N)."""
        return A.ravel()[self._token_column].reshape(self.tokens.shape)

    def scatter_pairs(self, G: np.ndarray) -> np.ndarray:
        """``B[k, j] = Σ_{l,n: token = k, query_n = j} G[l, n]``; G (L, N) zero on padding,
        result (K, K)."""
        return np.bincount(self._pair, G.ravel(), self.K * self.K).reshape(self.K, self.K)

    def scatter_tokens(self, G: np.ndarray) -> np.ndarray:
        """``b[k] = Σ_{l,n: token = k} G[l, n]``; G (L, N) zero on padding, result (K,)."""
        return np.bincount(self.tokens.ravel(), G.ravel(), self.K)

    def counts(self, G: np.ndarray) -> np.ndarray:
        """``C[k, n] = Σ_{l: token = k} G[l, n]``; G (L, N) zero on padding, result (K, N)."""
        N = self.query.size
        return np.bincount(self._token_column, G.ravel(), self.K * N).reshape(self.K, N)

def softmax_positions(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Softmax over positions (axis 0) of real scores with −inf entries (padding).

    Parameters
    ----------
    scores : ndarray, shape (L, N)

    Returns
    -------
    phi : ndarray, shape (L, N)
        Attention; 0 on padding.
    z : ndarray, shape (L, N)
        Scores minus their maximum over positions (−inf on padding).
    log_total : ndarray, shape (N,)
        log Σ_l exp(z_l), so that log φ = z − log_total.
    """
    z = scores - scores.max(axis=0)
    e = np.exp(z)
    total = e.sum(axis=0)
    return e / total, z, np.log(total)


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
        self.check_data_type(data)
        if data.d != self.d:
            raise ArgumentError(f"data embeddings have d={data.d}, the model has d={self.d}")

    @staticmethod
    def log_attention(data: Any, W: np.ndarray, scale: float = 1.0) -> np.ndarray:
        """log softmax over real positions of the scores x_lᵀ W q / scale, −inf on padding;
        shape (N, L)."""
        scores = np.einsum("nld,nd->nl", data.X, data.Q @ W.T) / scale  # x_lᵀ (W q)
        return log_softmax(np.where(data.mask, scores, -np.inf), axis=1)
