"""Regular-language recognition with a one-layer transformer (Huang, Liang, Yang, ICML 2025,
"How Transformers Learn Regular Language Recognition"): even pairs and parity with
chain-of-thought.

Model (spec ``regular.md`` §2): each (position ℓ, symbol w) has its own embedding E_ℓ^w (column
2(ℓ−1)+w of E), x_ℓ = E_ℓ^{x_ℓ}, the query is the last token, and

    a = Xᵀ W x_L / λ,   φ = softmax(a),   h = X φ,   T(X) = uᵀ h = Σ_ℓ φ_ℓ s_ℓ,   s_ℓ = ⟨u, x_ℓ⟩,

trained with the logistic loss summed over samples with weights (1/|I_L| per length). The
derivation, with the symbols used here (``s``, ``log_phi``, ``f``, ``g``, ``G_W``), is in
``docs/derivations/regular.md``.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
from scipy.special import expit

from gradflow.errors import ArgumentError
from gradflow.events import Event
from gradflow.model import Observable
from gradflow.models._last_token import LastTokenModel, padding_mask
from gradflow.models._token_index import TokenIndex, softmax_positions
from gradflow.models._validate import integer
from gradflow.numerics import logistic_loss

__all__ = [
    "RegularData",
    "RegularTransformer",
    "all_strings",
    "even_pairs",
    "even_pairs_label",
    "make_dataset",
    "parity",
    "parity_by_cot_generation",
    "parity_by_truncated_cot",
    "parity_cot",
    "phase_rates",
    "saturated_max_margin",
]

A_SYMBOL, B_SYMBOL = 0, 1


# --------------------------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------------------------


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
    pairs), weighted 1/2^L per length (spec §1)."""
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
    """The chain-of-thought training set for parity (spec §7, Method 2), with the even-pairs
    loss as a regulariser.

    Format B (default, full prefix): for each x ∈ {a,b}^{L0}, CoT tokens z_1 = x_1 ⊕ x_{L0},
    z_k = x_k ⊕ z_{k−1}; sample k (k = 1..L0−1) is the prefix (x_1..x_{L0}, z_1..z_{k−1}) with
    label +1 iff z_k = a (iff x_k equals the prefix's last token), weight 1/2^{L0}. Format A
    (truncated windows): sample k is (x_k..x_{L0}, z_1..z_{k−1}). The regulariser is the
    even-pairs data of ``regularizer_lengths`` (default 1..L0, spec §8.8).

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


def saturated_max_margin(max_position: int) -> np.ndarray:
    """u*_∞ = E_1^a + E_1^b − E_2^a − E_2^b (one-hot coordinates), the max-margin u for
    saturated attention (positives attend to position 1, negatives to position 2), ‖u*_∞‖ = 2."""
    u = np.zeros(2 * max_position)
    u[[0, 1]] = 1.0
    u[[2, 3]] = -1.0
    return u


# --------------------------------------------------------------------------------------------
# model
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Forward:
    """s, log_phi: (N, L); h: (N, d); f: (N,) — symbols of docs/derivations/regular.md."""

    s: np.ndarray
    log_phi: np.ndarray
    h: np.ndarray
    f: np.ndarray


class RegularTransformer(LastTokenModel):
    """T(X) = uᵀ X softmax(Xᵀ W x_L / λ): blocks ``u`` (d,) and ``W`` (d, d).

    Parameters
    ----------
    d : int
        Embedding dimension.
    lam : float
        Attention temperature λ > 0 (paper: 2); it also boosts W's rate in phase 1 of
        training (:func:`phase_rates`).

    Initialisation: ``init(preset="zero")`` (spec §3: u = 0, W = 0) or ``"normal"`` with
    entries N(0, 0.01²).
    """

    data_type = RegularData
    default_scale = 0.01

    def __init__(self, d: int, lam: float = 2.0):
        if not (np.isfinite(lam) and lam > 0):
            raise ArgumentError(f"lam must be a positive number, got {lam!r}")
        super().__init__(d, {"u": (int(d),), "W": (int(d), int(d))})
        self.lam = float(lam)

    def __repr__(self) -> str:
        return f"RegularTransformer(d={self.d}, lam={self.lam:g})"

    def forward(self, params: dict[str, np.ndarray], data: RegularData) -> Forward:
        """Token scores, attention, attention output and model output of every string."""
        s = data.X @ params["u"]
        log_phi = self.log_attention(data, params["W"], self.lam)
        phi = np.exp(log_phi)
        h = np.einsum("nl,nld->nd", phi, data.X)
        f = np.sum(np.where(data.mask, phi * s, 0.0), axis=1)
        return Forward(s=s, log_phi=log_phi, h=h, f=f)

    def sample_losses(self, params: dict[str, np.ndarray], data: RegularData) -> np.ndarray:
        """Unweighted logistic losses ℓ(y_n T(X_n)), shape (N,)."""
        return logistic_loss(data.y * self.forward(params, data).f)

    def sample_weights(self, data: RegularData) -> np.ndarray:
        """The paper's weights w_n: the loss is a sum over lengths of per-length means."""
        return data.weights

    def grad(self, params: dict[str, np.ndarray], data: RegularData) -> dict[str, np.ndarray]:
        """Closed-form gradient (``docs/derivations/regular.md``) in token-index form.

        With x_l = E[:, k_l], the scores are M[k_l, k_L] for M = Eᵀ W E / λ and s_l = (Eᵀu)[k_l];
        ∇_u L = E Σ_l (g φ)_l e_{k_l} and ∇_W L = E B Eᵀ / λ with B the (token, query) scatter
        of G_W (:class:`~gradflow.models._token_index.TokenIndex`). Real θ only.
        """
        index = data.token_index
        phi = softmax_positions(index.scores(index.token_matrix(params["W"] / self.lam)))[0]
        s = index.gather(index.token_vector(params["u"]))  # (L, N)
        f = (phi * s).sum(axis=0)
        g = data.y * data.weights * -expit(-data.y * f)  # w_n ∂ℓ_n/∂f_n
        g_phi = phi * g
        grad_u = index.weight_vector(index.scatter_tokens(g_phi))
        G_W = g_phi * (s - f)  # ∂L/∂a_l · λ
        grad_W = index.weight_matrix(index.scatter_pairs(G_W / self.lam))
        return {"u": grad_u, "W": grad_W}

    # ---------------------------------------------------------------- observables

    def margins(self, params: dict[str, np.ndarray], data: RegularData) -> np.ndarray:
        """y_n ⟨u, h_n⟩, shape (N,)."""
        return data.y * self.forward(params, data).f

    def normalized_margin(self, data: RegularData) -> Observable:
        """θ ↦ min_n y_n⟨u, h_n⟩/‖u‖ (> 0 once u separates the attention outputs)."""

        def margin(theta: np.ndarray) -> float:
            params = self.layout.unpack(theta)
            norm = np.linalg.norm(params["u"])
            return float(np.min(self.margins(params, data)) / norm) if norm > 0 else -np.inf

        return margin

    def separable(self, data: RegularData, terminal: bool = False) -> Event:
        """The attention outputs become linearly separable by u itself (margin crosses 0)."""
        margin = self.normalized_margin(data)
        return Event("separable", lambda th: max(margin(th), -1e3), terminal=terminal,
                     direction=1)

    def observables(
        self, data: RegularData, W_ref: np.ndarray | None = None,
        u_refs: dict[str, np.ndarray] | None = None,
    ) -> dict[str, Observable]:
        """Quantities of spec §4 as functions of θ.

        ==========================  ==================================================
        ``loss``                    the weighted loss
        ``scores`` (P, 2)           s_ℓ^w = ⟨u, E_ℓ^w⟩ for every position and symbol
        ``attention_pos`` (L,)      mean attention by position over positive strings
                                    of the longest length (``attention_neg``: negatives)
        ``u_norm``, ``W_norm``      ‖u‖, ‖W‖_F (``W_change``: ‖W − W_ref‖ with ``W_ref``)
        ``normalized_margin``       min_n y_n⟨u, h_n⟩/‖u‖
        ``cos_moving``              cos(u, u*(W_t)), NaN while u does not separate
        ``cos_<name>``              cos(u, u_ref) for every ``u_refs`` entry
        ``accuracy``                fraction of strings with y·T > 0
        ==========================  ==================================================
        """
        from gradflow.maxmargin import solve_max_margin

        layout = self.layout
        E = data.embedding
        longest = data.lengths == data.lengths.max()
        pos, neg = longest & (data.y > 0), longest & (data.y < 0)

        def params(th: np.ndarray) -> dict[str, np.ndarray]:
            return layout.unpack(th)

        def attention(rows: np.ndarray) -> Observable:
            return lambda th: np.mean(np.exp(self.forward(params(th), data).log_phi[rows]),
                                      axis=0)

        def cos(a: np.ndarray, b: np.ndarray) -> float:
            na, nb = np.linalg.norm(a), np.linalg.norm(b)
            return float(a @ b / (na * nb)) if na > 0 and nb > 0 else np.nan

        def cos_moving(th: np.ndarray) -> float:
            p = params(th)
            fwd = self.forward(p, data)
            if np.min(data.y * fwd.f) <= 0:
                return np.nan  # u does not separate the features yet
            # u separates them, so u*(W_t) exists: a solver error is an error, never a NaN
            return cos(p["u"], solve_max_margin(data.y[:, None] * fwd.h).w)

        obs: dict[str, Observable] = {
            "loss": lambda th: float(self.loss(params(th), data)),
            "scores": lambda th: (E.T @ params(th)["u"]).reshape(-1, 2),
            "attention_pos": attention(pos),
            "attention_neg": attention(neg),
            "u_norm": lambda th: float(np.linalg.norm(params(th)["u"])),
            "W_norm": lambda th: float(np.linalg.norm(params(th)["W"])),
            "normalized_margin": self.normalized_margin(data),
            "cos_moving": cos_moving,
            "accuracy": lambda th: float(np.mean(self.margins(params(th), data) > 0)),
        }
        if W_ref is not None:
            obs["W_change"] = lambda th: float(np.linalg.norm(params(th)["W"] - W_ref))
        for name, ref in (u_refs or {}).items():
            obs[f"cos_{name}"] = lambda th, ref=ref: cos(params(th)["u"], ref)
        return obs

    def predict(self, params: dict[str, np.ndarray], strings: Sequence[Sequence[int]],
                max_position: int, embedding: np.ndarray | None = None) -> np.ndarray:
        """T(X) for arbitrary strings (labels unused), shape (len(strings),)."""
        probe = make_dataset(strings, [1] * len(strings), [1.0] * len(strings),
                             max_position=max_position, embedding=embedding)
        return self.forward(params, probe).f


def phase_rates(lam: float, tau0: float) -> dict[str, list[tuple[float, float]]]:
    """The paper's two-phase rates for :func:`gradflow.simulate`: W's rate is λ for t < τ0 and
    1 afterwards (spec §3; τ0 = η·t0 = 10 for the paper's η = 0.1, t0 = 100)."""
    return {"W": [(0.0, float(lam)), (float(tau0), 1.0)]}


def parity_by_truncated_cot(model: RegularTransformer, params: dict[str, np.ndarray],
                            strings: Sequence[Sequence[int]], max_position: int,
                            embedding: np.ndarray | None = None) -> np.ndarray:
    """Parity by truncated chain-of-thought at inference with an even-pairs model (spec §7,
    Method 1): L−1 times, z = a if T(window) > 0 else b, then window ← (window[1:], z). The
    last z is the answer; returns +1 (even number of b's) or −1 per string, vectorised over
    strings of one length."""
    strings = np.asarray(strings, dtype=int)
    if strings.ndim != 2 or strings.shape[1] < 2:
        raise ArgumentError("strings must be an (n, L) array of one length L >= 2")
    window = strings.copy()
    z = np.zeros(len(strings), dtype=int)
    for _ in range(strings.shape[1] - 1):
        z = np.where(model.predict(params, window, max_position, embedding) > 0, A_SYMBOL,
                     B_SYMBOL)
        window = np.concatenate([window[:, 1:], z[:, None]], axis=1)
    return np.where(z == A_SYMBOL, 1, -1)


def parity_by_cot_generation(model: RegularTransformer, params: dict[str, np.ndarray],
                             strings: Sequence[Sequence[int]], max_position: int,
                             embedding: np.ndarray | None = None) -> np.ndarray:
    """Parity by generating the Format-B chain of thought with a CoT-trained model (spec §7,
    Method 2): z_k = a if T(x, z_1..z_{k−1}) > 0 else b for k = 1..L−1; returns ±1 from the
    last z."""
    strings = np.asarray(strings, dtype=int)
    prefix = strings.copy()
    z = np.zeros(len(strings), dtype=int)
    for _ in range(strings.shape[1] - 1):
        z = np.where(model.predict(params, prefix, max_position, embedding) > 0, A_SYMBOL,
                     B_SYMBOL)
        prefix = np.concatenate([prefix, z[:, None]], axis=1)
    return np.where(z == A_SYMBOL, 1, -1)


# --------------------------------------------------------------------------------------------
# training
# --------------------------------------------------------------------------------------------


def train(
    model: RegularTransformer,
    data: RegularData,
    T: float = 1e10,
    *,
    tau0: float = 10.0,
    theta0: np.ndarray | None = None,
    per_decade: int = 10,
    u_refs: dict[str, np.ndarray] | None = None,
    **simulate_kwargs: Any,
):
    """Joint gradient flow from zero with the paper's two phases (spec §3): W's rate is λ for
    t < τ0 and 1 afterwards (the jump is a breakpoint of the integration).

    The defaults (LSODA in the log clock, rtol 1e-9, atol 1e-11) are the measured best for this
    small state (``scripts/bench_regular.py``). θ is stored at every record time (the state is
    small), so quantities relative to W(τ0) or to the first separable time can be derived
    afterwards; τ0 is always a record time.

    Returns
    -------
    Trajectory
        With the observables of :meth:`RegularTransformer.observables` and the ``separable``
        event.
    """
    from gradflow.flow import log_grid, simulate

    theta = model.init(preset="zero") if theta0 is None else np.asarray(theta0, dtype=float)
    grid = np.union1d(log_grid(T, per_decade=per_decade), [tau0] if tau0 < T else [])
    options = {"method": "LSODA", "clock": "log", "rtol": 1e-9, "atol": 1e-11,
               **simulate_kwargs}
    return simulate(model.objective(data), theta, T, rates=phase_rates(model.lam, tau0),
                    record_at=grid, observables=model.observables(data, u_refs=u_refs),
                    events=[model.separable(data)],
                    config={"lam": model.lam, "tau0": tau0}, **options)


def frozen_w_control(
    model: RegularTransformer,
    data: RegularData,
    theta_T1: np.ndarray,
    T1: float,
    T: float = 1e10,
    per_decade: int = 5,
    **simulate_kwargs: Any,
):
    """Freeze W at W(T1) and train u alone (spec §4, Theorem 4.4's clean form): the features
    h_n(W_T1) are then fixed and cos(u, u*(W_T1)) must tend to 1 (observable ``cos_fixed``).

    Raises
    ------
    InfeasibleError
        If the attention outputs at W(T1) are not linearly separable.
    """
    from gradflow.flow import log_grid, simulate
    from gradflow.maxmargin import solve_max_margin

    fwd = model.forward(model.layout.unpack(theta_T1), data)
    u_star = solve_max_margin(data.y[:, None] * fwd.h).w
    options = {"method": "LSODA", "clock": "log", "rtol": 1e-10, "atol": 1e-12,
               **simulate_kwargs}
    grid = log_grid(T, t_start=T1, per_decade=per_decade)
    return simulate(model.objective(data), theta_T1, T, t_start=T1, rates={"W": 0.0},
                    record_at=grid, observables=model.observables(data, u_refs={"fixed": u_star}),
                    config={"frozen_W_at": T1}, **options)
