"""One module per paper; each meets the contract of :class:`gradflow.model.Model`."""

from gradflow.models import (
    cooccurrence,
    linear_icl,
    ntp,
    regular,
    representation_icl,
    softmax_icl,
)
from gradflow.model import Model

__all__ = [
    "Model",
    "cooccurrence",
    "linear_icl",
    "ntp",
    "regular",
    "representation_icl",
    "softmax_icl",
]
