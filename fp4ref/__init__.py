"""fp4ref: bit-exact reference emulator and test oracle for FP4 and microscaling (MX) formats.

Pipeline: formats → rounding (cast, stochastic) → blocks/scaling → hadamard → recipes/quantize → packing → check.
"""
from . import formats, hadamard, random, recipes, rounding
from .cast import CastError, decode, encode
from .quantize import QuantizedTensor, dequantize, quantize, quantize_rows, tensor_amax

__version__ = "0.1.0"
__all__ = ["formats", "hadamard", "random", "recipes", "rounding", "encode", "decode", "CastError", "quantize",
           "dequantize", "QuantizedTensor", "quantize_rows", "tensor_amax", "__version__"]
