"""fp4ref: bit-exact reference emulator and test oracle for FP4 and microscaling (MX) formats."""
from . import formats

__version__ = "0.1.0"
