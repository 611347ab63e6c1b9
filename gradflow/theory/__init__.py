"""The papers' predicted quantities (phase times, bands, rate curves) as functions."""

from gradflow.theory import cooccurrence, ntp

__all__ = ["cooccurrence", "ntp"]
