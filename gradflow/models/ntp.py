"""Next-token prediction with a one-layer transformer (Huang, Liang, Yang, NeurIPS 2024,
"Non-asymptotic convergence of training transformers for next-token prediction").

Model (spec ``ntp.md`` §1): for a sentence X = [x_1..x_L] (columns are token embeddings
e_t = E[:, t]) with query q = x_L,

    s = Xᵀ W_kq q,   φ = softmax(s),   h = X φ,   u = Eᵀ W_ov h,   ℓ = −log softmax(u)_y,

and the mean of ℓ over the dataset. The derivation of the gradient, with the symbols used here
(``s``, ``log_phi``, ``h``, ``u``, ``rho``, ``r_tilde``, ``a_tilde``, ``g_s``), is in
``docs/derivations/ntp.md``.

A dataset is realizable (spec §2) when every sentence's next token is the collocate n(x*) of its
unique optimal token x*, the relations x <_q x* observed per query q form a DAG (R1), x* is unique
(R2), n is a function (R3), and no other token of the sentence shares x*'s collocate (R4).
:func:`make_dataset` checks R1–R4 and names the offending sentence.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from gradflow.errors import ArgumentError
from gradflow.model import Observable
from gradflow.models._last_token import LastTokenModel, padding_mask
from gradflow.models._token_index import TokenIndex, softmax_positions
from gradflow.models._validate import generator, integer_array
from gradflow.numerics import cross_entropy, log_softmax, logsumexp

__all__ = [
    "FIXTURE_NAMES",
    "NTPData",
    "NTPTransformer",
    "fixture",
    "fixture_unseen",
    "make_dataset",
    "random_instance",
]

FIXTURE_NAMES = "abcdefgh"


# --------------------------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------------------------


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
    """Build a realizable next-token dataset, checking conditions R1–R4 of spec §2.

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
        the dataset (spec §8.2, default), every token with a collocate, or an explicit set.
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
    """The spec §2.1 fixture: 8 tokens a..h, n(i) = i + 4 mod 8, queries g and h, 9 sentences."""
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
    """A random realizable instance (spec §6): collocation a random permutation of the K tokens
    (so R3, R4 hold), a random total order per query whose observed part is a DAG (R1), and
    sentences of random length of distinct tokens ending in a query (R2), deduplicated.

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


# --------------------------------------------------------------------------------------------
# model
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Forward:
    """Forward quantities (symbols of ``docs/derivations/ntp.md``).

    log_phi : (N, L)      log attention, log softmax of s = Xᵀ W_kq q (−inf on padding)
    h : (N, d)            attention output X φ
    u : (N, K)            logits Eᵀ W_ov h
    log_p : (N, K)        log softmax(u)
    """

    log_phi: np.ndarray
    h: np.ndarray
    u: np.ndarray
    log_p: np.ndarray


class NTPTransformer(LastTokenModel):
    """One-layer transformer for next-token prediction: blocks ``W_kq`` and ``W_ov`` (d × d).

    Parameters
    ----------
    d : int
        Embedding dimension (rows of the dataset's E).

    Initialisation: ``init(preset="zero")`` (spec §8.3: both weights 0, uniform attention) or
    ``"normal"`` with entries N(0, 1).
    """

    data_type = NTPData

    def __init__(self, d: int):
        super().__init__(d, {"W_kq": (int(d), int(d)), "W_ov": (int(d), int(d))})

    def __repr__(self) -> str:
        return f"NTPTransformer(d={self.d})"

    def forward(self, params: dict[str, np.ndarray], data: NTPData) -> Forward:
        """Scores, attention, output and logits of every sentence (vectorised, padded)."""
        log_phi = self.log_attention(data, params["W_kq"])
        h = np.einsum("nl,nld->nd", np.exp(log_phi), data.X)
        u = (h @ params["W_ov"].T) @ data.embedding
        return Forward(log_phi=log_phi, h=h, u=u, log_p=log_softmax(u, axis=1))

    def sample_losses(self, params: dict[str, np.ndarray], data: NTPData) -> np.ndarray:
        """Cross-entropy −log p_y per sentence, shape (N,), accurate to the smallest double."""
        return cross_entropy(self.forward(params, data).u, data.y)

    def scaled_grad(
        self, params: dict[str, np.ndarray], data: NTPData
    ) -> tuple[dict[str, np.ndarray], dict[str, float]]:
        """The gradient with the largest exponential factored out of each block.

        Computed in token-index form (``docs/derivations/ntp.md`` §"Token-index form"): with
        C[k, n] the attention mass of sentence n on token k and P = Eᵀ W_ov E the logits are
        u = P C, and both gradients are scatters of (L, N) arrays mapped back by E · Eᵀ. Real θ
        only (the loss, not the gradient, is what the complex step differentiates).

        Returns
        -------
        blocks : dict of (d, d) arrays
        log_scales : dict of float
            True gradient of block b = exp(log_scales[b]) · blocks[b]; −inf for a zero block.
        """
        index, N = data.token_index, data.n
        P = index.token_matrix(params["W_ov"])  # logits u_n = P C_n
        phi, z, log_total = softmax_positions(index.scores(index.token_matrix(params["W_kq"])))
        C = index.counts(phi)  # (K, N): attention mass per token, h_n = E C_n
        u = P @ C  # (K, N)
        v_off = u - u.ravel()[data.label_flat] + data.label_pad  # u_c − u_y; −inf at c = y
        top = v_off.max(axis=0)
        e = np.exp(v_off - top)
        total = e.sum(axis=0)
        log_odds = top + np.log(total)  # log Σ_{c≠y} e^{u_c − u_y}
        rho = log_odds - np.logaddexp(0.0, log_odds)  # log Σ_{c≠y} p_c: residual scale
        r_tilde = e / total  # r = p − 1_y = e^ρ r̃
        r_tilde.ravel()[data.label_flat] = -1.0
        top_rho = float(rho.max())
        weight = np.exp(rho - top_rho)  # the 1/N of the mean goes into the scale
        g_ov = index.weight_matrix((r_tilde * weight) @ C.T)  # Σ_n w_n E r̃_n h_nᵀ
        # ∂ℓ/∂s_l = Σ_m φ_l φ_m (a_l − a_m) with a = X W_ovᵀ E r = e^ρ ã: the pairwise form
        # has no cancellation
        a_tilde = index.gather_columns(P.T @ r_tilde)  # (L, N)
        log_phi = z - log_total
        log_w = log_phi[:, None, :] + (log_phi + rho)[None, :, :] + index.pair_pad
        top_w = float(log_w.max())
        if np.isfinite(top_w):
            diff = a_tilde[:, None, :] - a_tilde[None, :, :]
            g_s = np.sum(np.exp(log_w - top_w) * diff, axis=1)
            g_kq = index.weight_matrix(index.scatter_pairs(g_s))
        else:
            g_kq = np.zeros((self.d, self.d))
        log_n = np.log(N)
        return {"W_kq": g_kq, "W_ov": g_ov}, {"W_kq": top_w - log_n, "W_ov": top_rho - log_n}

    def grad(self, params: dict[str, np.ndarray], data: NTPData) -> dict[str, np.ndarray]:
        """Closed-form gradient of the mean cross-entropy (``docs/derivations/ntp.md``): the
        :meth:`scaled_grad` blocks times their scales. Real θ only."""
        blocks, log_scales = self.scaled_grad(params, data)
        return {k: v * np.exp(log_scales[k]) if np.isfinite(log_scales[k]) else v * 0.0
                for k, v in blocks.items()}

    # ---------------------------------------------------------------- observables

    def accuracy(self, params: dict[str, np.ndarray], data: NTPData) -> float:
        """Fraction of sentences whose arg-max logit is the next token."""
        return float(np.mean(np.argmax(self.forward(params, data).u, axis=1) == data.y))

    def log_off_optimal_mass(self, params: dict[str, np.ndarray], data: NTPData) -> np.ndarray:
        """log of the attention mass on tokens other than x*, per sentence, shape (N,)."""
        fwd = self.forward(params, data)
        off = data.mask & (data.tokens != data.optimal[:, None])
        return logsumexp(np.where(off, fwd.log_phi, -np.inf), axis=1)

    def loss_excess(self, params: dict[str, np.ndarray], data: NTPData) -> float:
        """L − L_∞(W_ov), the loss above its floor with attention one-hot on x* (spec §3).

        Computed without cancellation: with δ = u − u_∞ − (u − u_∞)_y and p_∞ the floor's
        probabilities, ℓ − ℓ_∞ = log Σ_c p_∞,c e^{δ_c} = log1p(Σ_{c≠y} p_∞,c expm1(δ_c)) (the
        second form while the sum is small); u − u_∞ = Eᵀ W_ov Σ_{l: x_l ≠ x*} φ_l (x_l − e_x*)
        sums only the small off-optimal weights.
        """
        fwd = self.forward(params, data)
        E, W_ov = data.embedding, params["W_ov"]
        off = data.mask & (data.tokens != data.optimal[:, None])
        phi_off = np.where(off, np.exp(fwd.log_phi), 0.0)
        e_star = E.T[data.optimal]  # (N, d)
        shift = np.einsum("nl,nld->nd", phi_off, data.X - e_star[:, None, :])
        du = (shift @ W_ov.T) @ E  # (N, K)
        rows = np.arange(data.n)
        delta = du - du[rows, data.y][:, None]
        log_p_inf = log_softmax((e_star @ W_ov.T) @ E, axis=1)
        terms = np.exp(log_p_inf) * np.expm1(delta)
        terms[rows, data.y] = 0.0
        total = terms.sum(axis=1)
        # log1p is exact for a small excess; far from the floor, log Σ p_∞ e^δ directly
        near = np.abs(total) < 0.5
        excess = np.where(near, np.log1p(np.where(near, total, 0.0)),
                          logsumexp(log_p_inf + delta, axis=1))
        return float(np.mean(excess))

    def observables(
        self, data: NTPData, references: dict[str, np.ndarray] | None = None
    ) -> dict[str, Observable]:
        """Loss, accuracy, loss excess, off-optimal attention mass, and, for every block with a
        reference direction W* in ``references``, ``one_minus_cos_<block>`` and
        ``dist_<block>`` = ‖W/‖W‖ − W*/‖W*‖‖_F.

        ``one_minus_cos`` is computed as dist²/2, exact where 1 − cos would cancel.
        """
        layout = self.layout

        def params(theta: np.ndarray) -> dict[str, np.ndarray]:
            return layout.unpack(theta)

        obs: dict[str, Observable] = {
            "loss": lambda th: float(np.mean(self.sample_losses(params(th), data))),
            "accuracy": lambda th: self.accuracy(params(th), data),
            "loss_excess": lambda th: self.loss_excess(params(th), data),
            "log_off_optimal_mass": lambda th: float(
                logsumexp(self.log_off_optimal_mass(params(th), data)) - np.log(data.n)),
        }
        for name, reference in (references or {}).items():
            unit = reference / np.linalg.norm(reference)

            def dist(th: np.ndarray, name: str = name, unit: np.ndarray = unit) -> float:
                W = params(th)[name]
                norm = np.linalg.norm(W)
                return float(np.linalg.norm(W / norm - unit)) if norm > 0 else np.nan

            obs[f"dist_{name}"] = dist
            obs[f"one_minus_cos_{name}"] = lambda th, dist=dist: dist(th) ** 2 / 2
            obs[f"norm_{name}"] = lambda th, name=name: float(np.linalg.norm(params(th)[name]))
        return obs


# --------------------------------------------------------------------------------------------
# training
# --------------------------------------------------------------------------------------------


def two_stage(
    model: NTPTransformer,
    data: NTPData,
    *,
    T0: float = 30.0,
    T: float = 300.0,
    references: dict[str, np.ndarray] | None = None,
    theta0: np.ndarray | None = None,
    per_decade: int = 20,
    normalize: str | None = "block",
    **simulate_kwargs: Any,
):
    """The paper's two-stage normalised gradient flow (spec §3).

    Stage 1 trains ``W_ov`` alone on the collocation pairs (``data.stage1()``) for time ``T0``
    with dW_ov/dt = −∇L_0/‖∇L_0‖_F; stage 2 freezes ``W_ov`` and trains ``W_kq`` on the main
    loss for time ``T`` with dW_kq/dt = −∇_{W_kq}L/‖∇_{W_kq}L‖_F. The largest exponential is
    factored out of each block's gradient before normalising (``scaled_grad``), so directions
    stay exact after the raw loss underflows.

    The default solver is LSODA at rtol 1e-9, atol 1e-6 (entries of W that stay near 0 while
    others grow like t made atol 1e-12 force tiny steps beyond t ≈ 1e6) with its Jacobian by
    forward differences of absolute step 1e-6 (``solver_options={"jacobian_step": 1e-6}``):
    LSODA's own increments are relative to |W| ~ t, and past t ≈ 6e8 they exceed the O(1)
    scale on which the normalised field varies, so its Newton iteration stopped converging
    ("repeated convergence failures"). With the absolute step stage 2 reaches t = 1e10 in
    ~0.2 s. The normalised flow near the max-margin direction
    is mildly stiff (transverse deviations relax at an O(1) rate while W moves at unit speed),
    so explicit RK45 is stability-limited to O(1) steps (~95,000 evaluations to t = 2e4 on the
    fixture) while LSODA switches to its stiff mode (~1,700; ``scripts/bench_ntp.py``). The
    state is 2d² entries, far below the size where a dense Jacobian hurts.

    Parameters
    ----------
    model, data
    T0, T : float
        Durations of the two stages (stage-2 times restart at 0).
    references : dict, optional
        ``{"W_ov": W_ov*, "W_kq": W_kq*}`` for the cosine and distance observables.
    theta0 : ndarray, optional
        Start of stage 1 (default zero, spec §8.3); its ``W_kq`` is replaced by zero in stage 2.
    per_decade : int
        Record points per decade of t.
    normalize : {"block", None}
        ``"block"``: the paper's normalised flow; ``None``: plain gradient flow of each stage.
    **simulate_kwargs
        Passed to both :func:`gradflow.simulate` calls (e.g. ``rtol``, ``atol``, ``method``).

    Returns
    -------
    (Trajectory, Trajectory)
        Stage 1 (observables on the stage-1 data) and stage 2 (on the main data).
    """
    from gradflow.flow import log_grid, simulate

    references = references or {}
    stage1_data = data.stage1()
    theta = model.init(preset="zero") if theta0 is None else np.array(theta0, dtype=float)
    options = {"rtol": 1e-9, "atol": 1e-6, "method": "LSODA", **simulate_kwargs}
    if options["method"] in ("LSODA", "BDF", "Radau"):
        options["solver_options"] = {"jacobian_step": 1e-6,
                                     **(options.get("solver_options") or {})}
    stage1 = simulate(
        model.objective(stage1_data), theta, T0, normalize=normalize, rates={"W_kq": 0.0},
        record_at=log_grid(T0, per_decade=per_decade),
        observables=model.observables(stage1_data, {k: v for k, v in references.items()
                                                    if k == "W_ov"}),
        config={"stage": 1, "T0": T0}, **options,
    )
    theta = stage1.final_theta.copy()
    model.layout.unpack(theta)["W_kq"][...] = 0.0
    stage2 = simulate(
        model.objective(data), theta, T, normalize=normalize, rates={"W_ov": 0.0},
        record_at=log_grid(T, per_decade=per_decade),
        observables=model.observables(data, references), config={"stage": 2, "T": T},
        **options,
    )
    return stage1, stage2
