"""Next-token prediction datasets (Huang, Liang, Yang, NeurIPS 2024): sentences of token ids
over a vocabulary embedded by E, their realizability conditions, the paper's fixture and
random realizable instances.

A dataset is realizable (``docs/derivations/ntp.md``, §Realizability (R1–R4)) when every sentence's
next token is the collocate n(x*) of its unique optimal token x*, the relations x <_q x* observed
per query q form a DAG (R1), x* is unique (R2), n is a function (R3), and no other token of the
sentence shares x*'s collocate (R4). :func:`make_dataset` checks R1–R4 and names the offending
sentence.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from gradflow.attention import TokenIndex, padding_mask
from gradflow.errors import ArgumentError
from gradflow.validate import generator, integer_array

__all__ = ["FIXTURE_NAMES", "NTPData", "fixture", "fixture_unseen", "make_dataset",
           "random_instance"]

FIXTURE_NAMES = "abcdefgh"


@dataclass(frozen=True, eq=False)
class NTPData:
    """A next-token-prediction training set with its structure.

    Attributes
    ----------
    tokens : ndarray of int, shape (N, L_max)
        Sentences, left-aligned, padded with 0 beyond ``lengths``.
    lengths : ndarray of int, shape (N,)
    y : ndarray of int, shape (N,)
        Next tokens.
    optimal : ndarray of int, shape (N,)
        The optimal token x* of each sentence (the one whose collocate is y).
    collocation : ndarray of int, shape (K,)
        n(x) for each token, −1 where undefined.
    embedding : ndarray, shape (d, K)
        Token embeddings E (columns e_k).
    stage1_tokens : ndarray of int
        Tokens x whose collocation pairs (x, n(x)) form the stage-1 data.
    names : str or None
        One-character token names for printing (e.g. ``"abcdefgh"``).
    """

    tokens: np.ndarray
    lengths: np.ndarray
    y: np.ndarray
    optimal: np.ndarray
    collocation: np.ndarray
    embedding: np.ndarray
    stage1_tokens: np.ndarray
    names: str | None = None

    @property
    def n(self) -> int:
        return self.tokens.shape[0]

    @property
    def K(self) -> int:
        return self.embedding.shape[1]

    @property
    def d(self) -> int:
        return self.embedding.shape[0]

    @cached_property
    def mask(self) -> np.ndarray:
        """``mask[i, l]``: position l holds a token of sentence i; shape (N, L_max)."""
        return padding_mask(self.lengths, self.tokens.shape[1])

    @cached_property
    def query(self) -> np.ndarray:
        """Query token (the last one) of each sentence, shape (N,)."""
        return self.tokens[np.arange(self.n), self.lengths - 1]

    @cached_property
    def X(self) -> np.ndarray:
        """Embedded sentences, rows ``X[i, l] = e_{tokens[i, l]}`` (zero on padding); (N, L, d)."""
        return self.embedding.T[self.tokens] * self.mask[:, :, None]

    @cached_property
    def Q(self) -> np.ndarray:
        """Query embeddings, shape (N, d)."""
        return self.embedding.T[self.query]

    @cached_property
    def token_index(self) -> TokenIndex:
        """Index form of the sentences (embedding columns of tokens and queries)."""
        return TokenIndex(self.tokens, self.mask, self.query, self.embedding)

    @cached_property
    def label_flat(self) -> np.ndarray:
        """Flat index of (y_n, n) in a (K, N) array, shape (N,)."""
        return self.y * self.n + np.arange(self.n)

    @cached_property
    def label_pad(self) -> np.ndarray:
        """0 everywhere but −inf at (y_n, n); shape (K, N) (masks the label's logit)."""
        pad = np.zeros((self.K, self.n))
        pad[self.y, np.arange(self.n)] = -np.inf
        return pad

    def name(self, token: int) -> str:
        return self.names[token] if self.names else str(token)

    def sentence(self, i: int) -> list[int]:
        return self.tokens[i, : self.lengths[i]].tolist()

    def stage1(self) -> NTPData:
        """The stage-1 dataset: one-token sentences [x] → n(x) for x in ``stage1_tokens``."""
        x = self.stage1_tokens
        return NTPData(tokens=x[:, None], lengths=np.ones(x.size, dtype=int),
                       y=self.collocation[x], optimal=x, collocation=self.collocation,
                       embedding=self.embedding, stage1_tokens=x, names=self.names)

    def order_edges(self) -> dict[int, set[tuple[int, int]]]:
        """Observed relations per query: ``{q: {(x, x*), ...}}`` meaning x <_q x*."""
        edges: dict[int, set[tuple[int, int]]] = {}
        for i in range(self.n):
            q, best = int(self.query[i]), int(self.optimal[i])
            edges.setdefault(q, set()).update(
                (x, best) for x in set(self.sentence(i)) if x != best
            )
        return edges


def _topological_cycle(edges: set[tuple[int, int]]) -> list[int] | None:
    """A cycle of the directed graph ``lower → upper`` as a token list, or None (Kahn)."""
    nodes = {x for e in edges for x in e}
    out = {x: [b for a, b in edges if a == x] for x in nodes}
    indegree = {x: 0 for x in nodes}
    for _, b in edges:
        indegree[b] += 1
    ready = [x for x in nodes if indegree[x] == 0]
    seen = 0
    while ready:
        x = ready.pop()
        seen += 1
        for b in out[x]:
            indegree[b] -= 1
            if indegree[b] == 0:
                ready.append(b)
    if seen == len(nodes):
        return None
    return sorted(x for x in nodes if indegree[x] > 0)


def _resolve_embedding(embedding: Any, K: int) -> np.ndarray:
    if embedding is None:
        return np.eye(K)
    E = np.asarray(embedding, dtype=float)
    if E.ndim != 2 or E.shape[1] != K or not np.all(np.isfinite(E)):
        raise ArgumentError(f"embedding must be a finite (d, K={K}) array, got shape {E.shape}")
    return E


def make_dataset(
    sentences: Sequence[Sequence[int]],
    y: Sequence[int],
    collocation: Sequence[int],
    *,
    embedding: Any = None,
    stage1: str | Sequence[int] = "optimal",
    names: str | None = None,
) -> NTPData:
    """Build a realizable next-token dataset, checking conditions R1–R4
    (``docs/derivations/ntp.md``, §Realizability (R1–R4)).

    Parameters
    ----------
    sentences : sequence of sequences of int
        Token ids in [0, K); the last token of each sentence is its query.
    y : sequence of int
        The next token of each sentence.
    collocation : sequence of int, length K
        n(x) for every token x (−1 where undefined); a function by construction (R3).
    embedding : ndarray (d, K), optional
        Token embeddings; default one-hot E = I_K.
    stage1 : "optimal", "all" or sequence of int
        Tokens whose collocation pairs form the stage-1 data: those occurring as optimal in
        the dataset (default; a modelling choice of gradflow: docs/derivations/ntp.md,
        §Stage-1 data), every token with a collocate, or an explicit set.
    names : str, optional
        One-character token names used in messages and reports.

    Raises
    ------
    ArgumentError
        Naming the sentence (index and tokens) that breaks R1 (cyclic order per query), R2 (no
        unique optimal token), or R4 (another token shares the optimal token's collocate).
    """
    n_map = integer_array(collocation, "collocation")
    K = n_map.size
    if n_map.ndim != 1 or K == 0 or np.any((n_map < -1) | (n_map >= K)):
        raise ArgumentError(f"collocation must be K ints in [-1, K), got {list(n_map)}")
    if len(sentences) == 0 or len(sentences) != len(y):
        raise ArgumentError(
            f"need as many next tokens y ({len(y)}) as sentences ({len(sentences)}), at least 1"
        )
    names = names if names is None or len(names) >= K else None
    lengths = np.array([len(s) for s in sentences], dtype=int)
    if lengths.min() < 1:
        raise ArgumentError(f"sentence {int(np.argmin(lengths))} is empty")
    tokens = np.zeros((len(sentences), lengths.max()), dtype=int)
    optimal = np.empty(len(sentences), dtype=int)
    labels = integer_array(y, "y (the next tokens)")
    if labels.ndim != 1:
        raise ArgumentError(f"y must be one next token per sentence, got shape {labels.shape}")
    for i, (sentence, label) in enumerate(zip(sentences, labels.tolist(), strict=True)):
        ids = integer_array(sentence, f"sentence {i}")
        if ids.ndim != 1:
            raise ArgumentError(f"sentence {i} must be a sequence of token ids, got {sentence!r}")
        sentence = ids.tolist()
        shown = "".join(names[t] for t in sentence) if names else str(sentence)
        if min(sentence) < 0 or max(sentence) >= K or not 0 <= label < K:
            raise ArgumentError(f"sentence {i} ({shown}) has a token or label outside [0, {K})")
        tokens[i, : len(sentence)] = sentence
        candidates = {x for x in sentence if n_map[x] == label}
        if len(candidates) != 1:
            raise ArgumentError(
                f"sentence {i} ({shown}) → {label}: R2/R4 need exactly one token whose "
                f"collocate is the next token, found {sorted(candidates)}"
            )
        optimal[i] = candidates.pop()
    data_tokens = NTPData(tokens=tokens, lengths=lengths, y=labels,
                          optimal=optimal, collocation=n_map,
                          embedding=_resolve_embedding(embedding, K),
                          stage1_tokens=np.zeros(0, dtype=int), names=names)
    for q, edges in data_tokens.order_edges().items():
        cycle = _topological_cycle(edges)
        if cycle is not None:
            involved = [i for i in range(data_tokens.n) if data_tokens.query[i] == q
                        and data_tokens.optimal[i] in cycle]
            raise ArgumentError(
                f"R1: the observed order for query {data_tokens.name(q)} has a cycle through "
                f"tokens {[data_tokens.name(x) for x in cycle]} (sentences {involved})"
            )
    if isinstance(stage1, str):
        if stage1 == "optimal":
            s1 = np.unique(optimal)
        elif stage1 == "all":
            s1 = np.flatnonzero(n_map >= 0)
        else:
            raise ArgumentError(f"stage1 must be 'optimal', 'all' or a token list, got {stage1!r}")
    else:
        s1 = np.unique(integer_array(stage1, "stage1"))
        if s1.size == 0 or np.any(n_map[s1] < 0):
            raise ArgumentError("stage1 tokens must be a non-empty set of tokens with a collocate")
    return NTPData(tokens=tokens, lengths=lengths, y=data_tokens.y, optimal=optimal,
                   collocation=n_map, embedding=data_tokens.embedding, stage1_tokens=s1,
                   names=names)


def _parse(words: Sequence[str]) -> list[list[int]]:
    return [[FIXTURE_NAMES.index(c) for c in w] for w in words]


def fixture(embedding: Any = None) -> NTPData:
    """The fixture (docs/derivations/ntp.md, §Fixture and random instances): 8 tokens a..h,
    n(i) = i + 4 mod 8, queries g and h, 9 sentences."""
    words = ["bcg", "abg", "cdg", "dg", "efg", "abh", "bch", "cdh", "ah"]
    collocation = [(i + 4) % 8 for i in range(8)]
    sentences = _parse(words)
    best = _parse(["b", "a", "c", "d", "e", "b", "c", "d", "a"])
    y = [collocation[b[0]] for b in best]
    return make_dataset(sentences, y, collocation, embedding=embedding, names=FIXTURE_NAMES)


def fixture_unseen() -> list[tuple[list[int], int, str]]:
    """The fixture's 10 unseen sentences with their expected next token and how it is decided
    (``"closure"``: by the transitive closure of the observed order; ``"score"``: only by the
    W_kq* score order)."""
    rows = [("acg", "e", "closure"), ("adg", "e", "closure"), ("abcdg", "e", "closure"),
            ("bdg", "f", "closure"), ("bdh", "h", "closure"), ("ach", "g", "closure"),
            ("abcdh", "h", "closure"), ("adh", "h", "closure"), ("aeg", "e", "score"),
            ("fg", "b", "score")]
    return [(_parse([w])[0], FIXTURE_NAMES.index(y), how) for w, y, how in rows]


def random_instance(
    rng: Any = None,
    K: int = 16,
    n_queries: int = 3,
    n_sentences: int = 30,
    lengths: tuple[int, int] = (2, 6),
) -> NTPData:
    """A random realizable instance (docs/derivations/ntp.md, §Fixture and random instances):
    collocation a random permutation of the K tokens (so R3, R4 hold), a random total order per
    query whose observed part is a DAG (R1), and sentences of random length of distinct tokens
    ending in a query (R2), deduplicated.

    Parameters
    ----------
    rng : int or numpy.random.Generator
    K : int
        Vocabulary size (≥ max length + 1).
    n_queries : int
        Number of distinct query tokens.
    n_sentences : int
        Sentences drawn before deduplication.
    lengths : (int, int)
        Inclusive range of sentence lengths (≥ 2: a context token and the query).
    """
    gen = generator(rng)
    lo, hi = lengths
    if not (2 <= lo <= hi < K) or not 1 <= n_queries <= K or n_sentences < 1:
        raise ArgumentError(
            f"need 2 <= lengths[0] <= lengths[1] < K and 1 <= n_queries <= K, got "
            f"lengths={lengths}, K={K}, n_queries={n_queries}, n_sentences={n_sentences}"
        )
    collocation = gen.permutation(K)
    queries = gen.choice(K, size=n_queries, replace=False)
    rank = {int(q): gen.permutation(K) for q in queries}  # higher rank = preferred
    seen: set[tuple[int, ...]] = set()
    sentences, labels = [], []
    for _ in range(n_sentences):
        q = int(gen.choice(queries))
        length = int(gen.integers(lo, hi + 1))
        context = gen.choice(np.setdiff1d(np.arange(K), [q]), size=length - 1, replace=False)
        sentence = (*map(int, context), q)
        if sentence in seen:
            continue
        seen.add(sentence)
        best = max(sentence, key=lambda x, q=q: rank[q][x])
        sentences.append(list(sentence))
        labels.append(int(collocation[best]))
    return make_dataset(sentences, labels, collocation)
