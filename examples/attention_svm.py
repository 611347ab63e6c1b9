"""A researcher's own model, outside gradflow: one-layer softmax attention whose normalised
gradient flow converges in direction to an attention SVM (Tarzanagh, Li, Zhang, Oymak,
"Max-margin token selection in attention mechanism", NeurIPS 2023, Eq. (W-ERM) and Thm. 1).

f(X_i) = vᵀ X_iᵀ softmax(X_i W z_i), logistic loss on ±1 labels, fixed head v; the trained
block is W (d × d). ``docs/guide.md`` ("Max-margin flows on your own model") walks through it.
"""

from dataclasses import dataclass

import numpy as np

import gradflow
from gradflow.numerics import log_softmax, logistic_loss, sigmoid, softmax_readout


@dataclass(frozen=True)
class Instance:
    X: np.ndarray  # (n, T, d) tokens
    z: np.ndarray  # (n, d) queries
    y: np.ndarray  # (n,) labels ±1
    v: np.ndarray  # (d,) fixed head


def make_instance(n=6, T=8, d=10, rng=None) -> Instance:
    """Unit tokens, unit queries, ±1 labels and a unit head, as in the authors' experiments."""
    gen = np.random.default_rng(rng)
    unit = lambda a: a / np.linalg.norm(a, axis=-1, keepdims=True)  # noqa: E731
    return Instance(unit(gen.standard_normal((n, T, d))), unit(gen.standard_normal((n, d))),
                    gen.choice([-1.0, 1.0], n), unit(gen.standard_normal(d)))


class AttentionSVM(gradflow.Model):
    data_type = Instance

    def __init__(self, d: int):
        self.d = d

    @property
    def layout(self):
        return gradflow.Layout({"W": (self.d, self.d)})

    def init(self, rng=None, preset="normal"):
        return np.random.default_rng(rng).standard_normal(self.layout.size) / self.d

    def check_data(self, data):
        self.check_data_type(data)
        if data.X.shape[2] != self.d:
            raise gradflow.ArgumentError(f"data must be an Instance with d={self.d}")

    def scores(self, params, data):
        return np.einsum("ntd,de,ne->nt", data.X, params["W"], data.z)  # x_itᵀ W z_i

    def sample_losses(self, params, data):
        f = softmax_readout(self.scores(params, data), data.X @ data.v, axis=1)  # stays checkable
        return logistic_loss(data.y * f)  # ℓ_i; the loss is their mean

    def scaled_grad(self, params, data):
        """∇L = e^M · G, with the largest softmax-pair weight e^M factored out."""
        log_s = log_softmax(self.scores(params, data), axis=1)
        a = data.X @ data.v
        s = np.exp(log_s)
        c = -data.y * sigmoid(-data.y * np.sum(s * a, axis=1)) / len(data.y)  # ∂ℓ_i/∂f_i
        T = log_s.shape[1]
        log_w = log_s[:, :, None] + log_s[:, None, :] - np.diag(np.full(T, np.inf))  # s_t s_τ, τ≠t
        M = float(log_w.max())
        # ∂f/∂score_t = s_t (a_t − f) = Σ_τ s_t s_τ (a_t − a_τ): the pairwise form cannot cancel
        g_score = np.sum(np.exp(log_w - M) * (a[:, :, None] - a[:, None, :]), axis=2)
        G = np.einsum("n,nt,ntd,ne->de", c, g_score, data.X, data.z)
        return {"W": G}, {"W": M}

    def grad(self, params, data):
        G, log_scales = self.scaled_grad(params, data)
        return {"W": G["W"] * np.exp(log_scales["W"])}

    def observables(self, data):
        """‖W‖ and the selected token of each sequence (the top score)."""
        selected = lambda th: np.argmax(self.scores(self.layout.unpack(th), data), axis=1)  # noqa: E731
        return {"norm_W": lambda th: float(np.linalg.norm(th)), "selected": selected}
