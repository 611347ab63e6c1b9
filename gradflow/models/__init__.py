"""One module per paper; each meets the contract of :class:`gradflow.models.base.Model`."""

from gradflow.models import cooccurrence, ntp, regular
from gradflow.models.base import Model

__all__ = ["Model", "cooccurrence", "ntp", "regular"]
