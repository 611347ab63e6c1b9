"""Straightforward dense implementations of the closed-form gradients that the library computes
in optimised (token-index) form. They follow docs/derivations/ symbol by symbol on the (N, L, d)
arrays and are the independent reference of the optimised code (issue #6: equal to 1e-12)."""

from __future__ import annotations

import numpy as np

from gradflow.numerics import logsumexp, sigmoid, softmax


def outer_sum(G, X, Q):
    """Σ_n Σ_l G[n, l] x_{n,l} q_nᵀ."""
    return np.einsum("nl,nld,ne->de", G, X, Q)


def regular_grad(model, params, data):
    fwd = model.forward(params, data)
    g = -data.y * sigmoid(-data.y * fwd.f) * data.weights
    phi = np.where(data.mask, np.exp(fwd.log_phi), 0.0)
    G_W = g[:, None] * phi * (fwd.s - fwd.f[:, None]) / model.lam
    return {"u": fwd.h.T @ g, "W": outer_sum(G_W, data.X, data.Q)}


def ntp_scaled_grad(model, params, data):
    fwd = model.forward(params, data)
    rows = np.arange(data.n)
    off = np.ones(fwd.log_p.shape, dtype=bool)
    off[rows, data.y] = False
    log_p_off = np.where(off, fwd.log_p, -np.inf)
    rho = logsumexp(log_p_off, axis=1)
    r_tilde = np.exp(log_p_off - rho[:, None])
    r_tilde[rows, data.y] = -1.0
    E = data.embedding
    log_scale_ov = float(np.max(rho))
    weight = np.exp(rho - log_scale_ov) / data.n
    g_ov = np.einsum("n,kn,nd->kd", weight, E @ r_tilde.T, fwd.h)
    a_tilde = np.einsum("nld,dk,kc,nc->nl", data.X, params["W_ov"].T, E, r_tilde)
    L = data.tokens.shape[1]
    log_w = fwd.log_phi[:, :, None] + fwd.log_phi[:, None, :] + rho[:, None, None]
    pair = data.mask[:, :, None] & data.mask[:, None, :] & ~np.eye(L, dtype=bool)
    log_w = np.where(pair, log_w, -np.inf)
    log_scale_kq = float(np.max(log_w))
    if np.isfinite(log_scale_kq):
        diff = a_tilde[:, :, None] - a_tilde[:, None, :]
        g_s = np.sum(np.exp(log_w - log_scale_kq) * diff, axis=2) / data.n
        g_kq = outer_sum(g_s, data.X, data.Q)
    else:
        g_kq = np.zeros((model.d, model.d))
    return {"W_kq": g_kq, "W_ov": g_ov}, {"W_kq": log_scale_kq, "W_ov": log_scale_ov}


def feature_icl_grad(model, params, data):
    """HCL: one softmax of the logits log c_n + s_nk over every (count vector, query, key)."""
    S, K = params["S"], model.K
    logits = data.log_counts[:, None, :] + S.T[None, :, :]  # (C, k, n)
    if data.include_query:
        query = np.broadcast_to(np.diagonal(S)[None, :, None], (logits.shape[0], K, 1))
        full = softmax(np.concatenate([logits, query], axis=2), axis=2)
        a, a_q = full[:, :, :-1], full[:, :, -1]
    else:
        a, a_q = softmax(logits, axis=2), np.zeros(logits.shape[:2])
    err = a - np.eye(K)[None, :, :]
    inner = np.sum(a * err, axis=2)
    per = a * (err - inner[:, :, None])
    per[:, np.arange(K), np.arange(K)] -= a_q * inner
    return {"S": (np.einsum("c,ckm->km", data.weights, per) * data.p[:, None]).T}
