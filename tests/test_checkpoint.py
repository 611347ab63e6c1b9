"""Checkpoint folders: decade segments."""

import numpy as np

from gradflow import Layout, simulate

# --------------------------------------------------------------------------- segments (W2)


class Logistic:
    """L(w) = log(1 + e^{−w}): w(t) ~ log t, so adaptive steps grow ∝ t, as in the papers'
    late phases; RK45 at rtol 1e-10 takes ~15 steps a decade."""

    layout = Layout({"w": (1,)})
    checkpoint_key = "logistic"

    def value(self, theta):
        return np.log1p(np.exp(-theta[0]))

    def gradient(self, theta):
        return -1.0 / (1.0 + np.exp(theta))

    def sample_losses(self, theta):
        return np.array([self.value(theta)])


def test_one_segment_per_decade_of_the_record_grid(tmp_path):
    """W2: at 20 records a decade and ~12 steps a decade, steps straddle the decade
    boundaries; each boundary a step crosses closes a segment. (The old rule, a segment only
    when a step ends between a decade's last record and the next one's first, saved 3
    segments here, one spanning t = 100 ... 89125.)"""
    grid = np.concatenate([[0.0], np.geomspace(1.0, 1e6, 121)])
    traj = simulate(Logistic(), np.zeros(1), 1e6, method="RK45", rtol=1e-7, atol=1e-12,
                    record_at=grid, checkpoint=tmp_path / "ck")
    assert 60 < traj.stats["steps"] < 100  # fewer steps than records: steps straddle
    times = [np.load(path)["t"] for path in sorted((tmp_path / "ck").glob("segment_*.npz"))]
    segments = [(t.size, t[0], t[-1]) for t in times]
    assert 6 <= len(segments) <= 7, segments  # decades 0-5 (t = 1e6 may close its own)
    for _, t0, t1 in segments[1:]:
        assert np.log10(t1 / t0) <= 1 + 1e-9, segments  # no segment spans more than a decade
    assert sum(n for n, _, _ in segments) == grid.size
