"""ACDA: adaptive convolutions with per-pixel dynamic filter atoms (Wang et al., ICCV 2021).

The library needs only torch and scipy (``pip install acda-repro``). ``acda.convert(model)`` returns
the converted model; ``plan(model)`` (``from acda.convert import plan``) says what it would convert and
skip, and why, without changing anything.

Importing ``acda`` tags ``torch.compile``'s cache keys with the CPU's vector instruction set
(``acda.compile_cache``): torch would otherwise reuse CPU kernels generated for another vector width.
"""
from .backend import set_backend, use_backend
from .bases import fourier_bessel_basis, multiscale_bases
from .compile_cache import tag_compile_cache
from .convert import convert
from .functional import acda_conv2d, atom_conv2d, per_pixel_conv2d, per_pixel_filters
from .generator import AtomGenerator
from .layers import ACDAConv2d
from .utils import ArgumentError, ArgumentTypeError, ArgumentValueError

__all__ = [
    "ACDAConv2d",
    "ArgumentError",
    "ArgumentTypeError",
    "ArgumentValueError",
    "convert",
    "AtomGenerator",
    "acda_conv2d",
    "atom_conv2d",
    "fourier_bessel_basis",
    "multiscale_bases",
    "per_pixel_filters",
    "per_pixel_conv2d",
    "set_backend",
    "use_backend",
]
__version__ = "0.1.0"

tag_compile_cache()
