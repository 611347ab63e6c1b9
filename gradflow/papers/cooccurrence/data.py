"""Word co-occurrence datasets (Yang, Kailkhura, Wang, Liang, NeurIPS 2024, Def. 2.1).

Tokens are 0-based: token 0 is μ1, 1 is μ2 (the two target words), 2 is μ3 (the common token)
and 3..d−1 are the random tokens.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal

import numpy as np

from gradflow.errors import ArgumentError
from gradflow.validate import generator, integer

__all__ = ["MU1", "MU2", "MU3", "N_SPECIAL", "TYPE_LABELS", "CooccurrenceData", "make_dataset"]

MU1, MU2, MU3 = 0, 1, 2
"""Token ids of the two target words and the common token."""
N_SPECIAL = 3
TYPE_LABELS = {1: 1.0, 2: -1.0, 3: -1.0, 4: -1.0}


@dataclass(frozen=True, eq=False)
class CooccurrenceData:
    """A co-occurrence training set (paper Def. 2.1).

    Attributes
    ----------
    X : ndarray, shape (n, L, d)
        Embedded sequences; row ``X[i, h]`` is the embedding of token ``tokens[i, h]``.
    y : ndarray, shape (n,)
        Labels ±1 (+1 for type 1: both targets present).
    types : ndarray of int, shape (n,)
        Sample types 1..4 (both targets, only μ1, only μ2, neither).
    tokens : ndarray of int, shape (n, L), or None
        Token ids; with ``embedding`` the identity they enable the one-hot fast path.
    embedding : ndarray, shape (d, d)
        Orthonormal token embeddings, row k = μ_{k+1}.
    """

    X: np.ndarray
    y: np.ndarray
    types: np.ndarray
    tokens: np.ndarray | None
    embedding: np.ndarray

    @property
    def n(self) -> int:
        return self.X.shape[0]

    @property
    def L(self) -> int:
        return self.X.shape[1]

    @property
    def d(self) -> int:
        return self.X.shape[2]

    @cached_property
    def is_one_hot(self) -> bool:
        """Whether tokens are given and embedded as standard basis vectors."""
        return self.tokens is not None and np.array_equal(self.embedding, np.eye(self.d))

    @cached_property
    def pair_index(self) -> np.ndarray:
        """Flat index ``tokens[i, h]·d + tokens[i, l]`` into a (d, d) matrix, shape (n, L, L)."""
        tok = self.tokens
        return tok[:, :, None] * self.d + tok[:, None, :]

    @cached_property
    def type_masks(self) -> dict[int, np.ndarray]:
        """Boolean masks of the samples of each type 1..4, each shape (n,)."""
        return {k: self.types == k for k in (1, 2, 3, 4)}


def _orthonormal_embedding(embedding: Any, d: int, gen: np.random.Generator) -> np.ndarray:
    if embedding is None or (isinstance(embedding, str) and embedding == "identity"):
        return np.eye(d)
    if isinstance(embedding, str) and embedding == "random_orthonormal":
        q, r = np.linalg.qr(gen.standard_normal((d, d)))
        return q * np.sign(np.diag(r))
    if isinstance(embedding, str):
        raise ArgumentError(
            f"embedding must be 'identity', 'random_orthonormal' or a (d, d) orthonormal "
            f"array, got {embedding!r}"
        )
    emb = np.asarray(embedding, dtype=float)
    if emb.shape != (d, d):
        raise ArgumentError(f"embedding must have shape ({d}, {d}), got {emb.shape}")
    if not np.allclose(emb @ emb.T, np.eye(d), atol=1e-10):
        raise ArgumentError("embedding must have orthonormal rows (E Eᵀ = I)")
    return emb


def make_dataset(
    d: int = 64,
    L: int = 5,
    counts: tuple[int, int, int, int] = (30, 10, 10, 10),
    rng: Any = None,
    *,
    random_tokens: Literal["replace", "distinct"] = "replace",
    embedding: Any = None,
) -> CooccurrenceData:
    """Draw a training set with exact type counts (paper Def. 2.1, Assumption 2.3(i)).

    Every sequence holds μ3 once at a uniformly random position; type 1 holds μ1 and μ2 at two
    further distinct positions, type 2 only μ1, type 3 only μ2, type 4 neither; every other slot
    holds a random token from {μ4..μd}.

    Parameters
    ----------
    d : int
        Vocabulary and embedding size (≥ 4).
    L : int
        Sequence length (≥ 3).
    counts : 4 ints
        Number of samples of types 1..4 (paper: 30, 10, 10, 10).
    rng : int or numpy.random.Generator
    random_tokens : {"replace", "distinct"}
        ``"replace"`` draws random tokens uniformly with replacement (the paper's experiment,
        which violates Assumption 2.3(ii)); ``"distinct"`` makes every random-token occurrence in
        the whole set distinct (the theory's assumption; needs enough tokens).
    embedding : None, "identity", "random_orthonormal" or ndarray (d, d)
        Token embeddings; the default standard basis enables the one-hot fast path.

    Returns
    -------
    CooccurrenceData
        Samples grouped by type (type 1 first).
    """
    gen = generator(rng)
    given = counts
    try:
        counts = tuple(integer(c, "counts", minimum=0) for c in given)
    except (ArgumentError, TypeError):  # not an iterable of non-negative integers
        counts = ()
    if len(counts) != 4 or sum(counts) == 0:
        raise ArgumentError(
            f"counts must be 4 non-negative ints with a positive sum, got {given!r}"
        )
    L = integer(L, "L", minimum=3, why=" (type 1 needs 3 slots)")
    d = integer(d, "d", minimum=4, why=" (3 special tokens + 1 random)")
    if random_tokens not in ("replace", "distinct"):
        raise ArgumentError(
            f"random_tokens must be 'replace' or 'distinct', got {random_tokens!r}"
        )
    types = np.repeat(np.arange(1, 5), counts)
    n = types.size
    tokens = np.full((n, L), -1, dtype=np.int64)
    order = np.argsort(gen.random((n, L)), axis=1)  # a random permutation of positions per row
    rows = np.arange(n)
    tokens[rows, order[:, 0]] = MU3
    tokens[rows[types == 1], order[types == 1, 1]] = MU1
    tokens[rows[types == 1], order[types == 1, 2]] = MU2
    tokens[rows[types == 2], order[types == 2, 1]] = MU1
    tokens[rows[types == 3], order[types == 3, 1]] = MU2
    free = tokens < 0
    n_free = int(free.sum())
    n_random = d - N_SPECIAL
    if random_tokens == "distinct":
        if n_free > n_random:
            raise ArgumentError(
                f"random_tokens='distinct' needs d - 3 >= {n_free} random tokens for counts="
                f"{counts} and L={L}, but d={d} gives {n_random}; use d >= {n_free + 3} or "
                "random_tokens='replace'"
            )
        tokens[free] = N_SPECIAL + gen.permutation(n_random)[:n_free]
    else:
        tokens[free] = gen.integers(N_SPECIAL, d, size=n_free)
    emb = _orthonormal_embedding(embedding, d, gen)
    y = np.array([TYPE_LABELS[k] for k in types]) if n else np.zeros(0)
    return CooccurrenceData(X=emb[tokens], y=y, types=types, tokens=tokens, embedding=emb)
