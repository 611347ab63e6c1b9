"""Regular-language datasets (Huang, Liang, Yang, ICML 2025): strings over {a, b} with ±1
labels and per-sample weights; even pairs, parity and parity with chain-of-thought.

Each (position ℓ, symbol w) has its own embedding E_ℓ^w (column 2(ℓ−1)+w of E); the weights are
1/|I_L| per length L, so the loss is a sum over lengths of per-length means
(``docs/derivations/regular.md``).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from gradflow.attention import TokenIndex, padding_mask
from gradflow.errors import ArgumentError
from gradflow.validate import integer

__all__ = ["A_SYMBOL", "B_SYMBOL", "RegularData", "all_strings", "even_pairs",
           "even_pairs_label", "make_dataset", "parity", "parity_cot"]

A_SYMBOL, B_SYMBOL = 0, 1


@dataclass(frozen=True, eq=False)
class RegularData:
    """Strings over {a, b} with ±1 labels and per-sample weights.

    Attributes
    ----------
    symbols : ndarray of int, shape (N, L_max)
        0 = a, 1 = b; left-aligned, padded with 0 beyond ``lengths``.
    lengths : ndarray of int, shape (N,)
    y : ndarray, shape (N,)
        +1 ("even" / "equal"; the next CoT token is a) or −1.
    weights : ndarray, shape (N,)
        Loss weights (1/|I_L| for every string of length L in the even-pairs loss).
    embedding : ndarray, shape (d, 2·L_pos)
        Column 2(ℓ−1)+w is E_ℓ^w.
    """

    symbols: np.ndarray
    lengths: np.ndarray
    y: np.ndarray
    weights: np.ndarray
    embedding: np.ndarray

    @property
    def n(self) -> int:
        return self.symbols.shape[0]

    @property
    def d(self) -> int:
        return self.embedding.shape[0]

    @property
    def max_position(self) -> int:
        return self.embedding.shape[1] // 2

    @cached_property
    def mask(self) -> np.ndarray:
        """``mask[n, l]``: position l holds a symbol of string n; shape (N, L_max)."""
        return padding_mask(self.lengths, self.symbols.shape[1])

    @cached_property
    def index(self) -> np.ndarray:
        """Embedding column 2ℓ + w (0-based position ℓ) of every token, shape (N, L_max)."""
        return np.where(self.mask, 2 * np.arange(self.symbols.shape[1])[None, :] + self.symbols,
                        0)

    @cached_property
    def X(self) -> np.ndarray:
        """Token embeddings as rows, zero on padding; shape (N, L_max, d)."""
        return self.embedding.T[self.index] * self.mask[:, :, None]

    @cached_property
    def Q(self) -> np.ndarray:
        """Query (last token) embeddings, shape (N, d)."""
        return self.X[np.arange(self.n), self.lengths - 1]

    @cached_property
    def token_index(self) -> TokenIndex:
        """Index form of the strings (embedding columns of tokens and queries)."""
        query = self.index[np.arange(self.n), self.lengths - 1]
        return TokenIndex(self.index, self.mask, query, self.embedding)


def all_strings(length: int) -> np.ndarray:
    """Every string of {a, b}^length in lexicographic order, shape (2^length, length)."""
    return np.array(list(itertools.product((A_SYMBOL, B_SYMBOL), repeat=length)), dtype=int)


def even_pairs_label(string: Sequence[int]) -> int:
    """+1 iff the number of contiguous ab and ba pairs is even (the definition, by counting)."""
    changes = sum(int(a != b) for a, b in itertools.pairwise(string))
    return 1 if changes % 2 == 0 else -1


def _embedding(max_position: int, embedding: Any) -> np.ndarray:
    if embedding is None:
        return np.eye(2 * max_position)
    E = np.asarray(embedding, dtype=float)
    if E.ndim != 2 or E.shape[1] != 2 * max_position or not np.all(np.isfinite(E)):
        raise ArgumentError(
            f"embedding must be a finite (d, {2 * max_position}) array (one column per "
            f"(position, symbol)), got shape {E.shape}"
        )
    return E


def make_dataset(
    strings: Sequence[Sequence[int]],
    y: Sequence[float],
    weights: Sequence[float],
    *,
    max_position: int | None = None,
    embedding: Any = None,
) -> RegularData:
    """A dataset from explicit strings, labels (±1) and weights.

    Parameters
    ----------
    strings : sequence of sequences of 0/1
    y : sequence of ±1
    weights : sequence of positive floats
    max_position : int, optional
        Number of positions with embeddings (default: the longest string).
    embedding : ndarray (d, 2·max_position), optional
        Default E = I (orthonormal, one vector per (position, symbol)).
    """
    if len(strings) == 0 or not len(strings) == len(y) == len(weights):
        raise ArgumentError(
            f"strings, y and weights must have one equal, positive length; got {len(strings)}, "
            f"{len(y)}, {len(weights)}"
        )
    lengths = np.array([len(s) for s in strings], dtype=int)
    if lengths.min() < 1:
        raise ArgumentError(f"string {int(np.argmin(lengths))} is empty")
    max_position = int(lengths.max()) if max_position is None else int(max_position)
    if lengths.max() > max_position:
        raise ArgumentError(
            f"a string of length {lengths.max()} exceeds max_position={max_position}"
        )
    symbols = np.zeros((len(strings), lengths.max()), dtype=int)
    for i, s in enumerate(strings):
        if any(c not in (A_SYMBOL, B_SYMBOL) for c in s):
            raise ArgumentError(f"string {i} has a symbol other than 0 (a) and 1 (b): {list(s)}")
        symbols[i, : len(s)] = s
    y = np.asarray(y, dtype=float)
    weights = np.asarray(weights, dtype=float)
    if not np.all(np.isin(y, (-1.0, 1.0))):
        raise ArgumentError("labels y must be ±1")
    if not np.all(weights > 0):
        raise ArgumentError("weights must be positive")
    return RegularData(symbols=symbols, lengths=lengths, y=y, weights=weights,
                       embedding=_embedding(max_position, embedding))


def _by_length(lengths: Sequence[int], label) -> tuple[list, list, list]:
    """Every string of each length, its label, and weight 1/2^L."""
    strings, y, weights = [], [], []
    for length in lengths:
        block = all_strings(length)
        strings += [list(s) for s in block]
        y += [label(s) for s in block]
        weights += [1.0 / len(block)] * len(block)
    return strings, y, weights


def even_pairs(L_max: int = 6, *, embedding: Any = None) -> RegularData:
    """Every string of lengths 1..L_max, labelled +1 iff x_1 = x_L (≡ an even number of ab/ba
    pairs), weighted 1/2^L per length (docs/derivations/regular.md, §Data)."""
    L_max = integer(L_max, "L_max")
    strings, y, w = _by_length(range(1, L_max + 1), lambda s: 1 if s[0] == s[-1] else -1)
    return make_dataset(strings, y, w, embedding=embedding)


def parity(L_max: int = 6, *, embedding: Any = None) -> RegularData:
    """Every string of lengths 1..L_max, labelled +1 iff the number of b's is even."""
    L_max = integer(L_max, "L_max")
    strings, y, w = _by_length(range(1, L_max + 1), lambda s: 1 if sum(s) % 2 == 0 else -1)
    return make_dataset(strings, y, w, embedding=embedding)


def parity_cot(
    L0: int = 4,
    *,
    regularizer_lengths: Sequence[int] | None = None,
    cot_format: str = "B",
    embedding: Any = None,
) -> RegularData:
    """The chain-of-thought training set for parity (the paper's Method 2, in a format that is a
    modelling choice of gradflow: docs/derivations/regular.md, §Parity by chain of thought), with
    the even-pairs loss as a regulariser.

    Format B (default, full prefix): for each x ∈ {a,b}^{L0}, CoT tokens z_1 = x_1 ⊕ x_{L0},
    z_k = x_k ⊕ z_{k−1}; sample k (k = 1..L0−1) is the prefix (x_1..x_{L0}, z_1..z_{k−1}) with
    label +1 iff z_k = a (iff x_k equals the prefix's last token), weight 1/2^{L0}. Format A
    (truncated windows): sample k is (x_k..x_{L0}, z_1..z_{k−1}). The regulariser is the
    even-pairs data of ``regularizer_lengths`` (default 1..L0, the same section).

    Parameters
    ----------
    L0 : int
        Input length (≥ 2).
    regularizer_lengths : sequence of int, optional
        Lengths of the even-pairs regulariser (empty for the CoT loss alone).
    cot_format : {"B", "A"}
    embedding : ndarray, optional
        (d, 2·max_position) with max_position = 2·L0 − 2 (format B) or L0 (format A).
    """
    L0 = integer(L0, "L0", minimum=2)
    if cot_format not in ("A", "B"):
        raise ArgumentError(f"cot_format must be 'A' or 'B', got {cot_format!r}")
    reg = list(range(1, L0 + 1)) if regularizer_lengths is None else list(regularizer_lengths)
    strings, y, weights = [], [], []
    for x in all_strings(L0):
        z = [x[0] ^ x[-1]]
        for k in range(1, L0 - 1):
            z.append(x[k] ^ z[-1])
        for k in range(L0 - 1):  # sample k predicts z_{k+1} (0-based z[k])
            prefix = [*x, *z[:k]] if cot_format == "B" else [*x[k:], *z[:k]]
            strings.append(prefix)
            y.append(1 if z[k] == A_SYMBOL else -1)
            weights.append(1.0 / 2**L0)
    s_reg, y_reg, w_reg = _by_length(reg, lambda s: 1 if s[0] == s[-1] else -1)
    max_position = max(len(s) for s in strings + s_reg)
    return make_dataset(strings + s_reg, y + y_reg, weights + w_reg, max_position=max_position,
                        embedding=embedding)
