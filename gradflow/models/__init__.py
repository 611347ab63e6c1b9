"""One module per paper; each meets the contract of :class:`gradflow.model.Model`."""

from gradflow.model import Model
from gradflow.models import (
    cooccurrence,
    linear_icl,
    ntp,
    regular,
    representation_icl,
    softmax_icl,
)

__all__ = [
    "Model",
    "cooccurrence",
    "linear_icl",
    "ntp",
    "regular",
    "representation_icl",
    "softmax_icl",
]
