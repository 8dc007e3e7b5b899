"""fp4ref: bit-exact reference emulator and test oracle for FP4 and microscaling (MX) formats."""
from . import formats, hadamard, random, rounding
from .cast import CastError, decode, encode

__version__ = "0.1.0"
__all__ = ["formats", "hadamard", "random", "rounding", "encode", "decode", "CastError", "__version__"]
