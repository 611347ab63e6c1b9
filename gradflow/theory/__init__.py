"""The papers' predicted quantities (phase times, bands, rate curves) as functions."""

from gradflow.theory import cooccurrence, linear_icl, ntp

__all__ = ["cooccurrence", "linear_icl", "ntp"]
