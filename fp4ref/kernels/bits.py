"""Scalar bit casts and 32-bit shifts for Numba kernels (LLVM bitcast: free, unlike a one-element array view)."""
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic


@intrinsic
def f64_as_u64(typingctx, x):
    if x != types.float64:
        return None
    sig = types.uint64(types.float64)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(types.uint64))
    return sig, codegen


@intrinsic
def u64_as_f64(typingctx, b):
    if b != types.uint64:
        return None
    sig = types.float64(types.uint64)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(types.float64))
    return sig, codegen


@intrinsic
def f32_as_u32(typingctx, x):
    if x != types.float32:
        return None
    sig = types.uint32(types.float32)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(types.uint32))
    return sig, codegen


@intrinsic
def u32_as_f32(typingctx, b):
    if b != types.uint32:
        return None
    sig = types.float32(types.uint32)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(types.float32))
    return sig, codegen


def _shift32(op):
    @intrinsic
    def shift(typingctx, a, s):
        if a not in (types.int32, types.uint32) or not isinstance(s, types.Integer):
            return None
        sig = a(a, s)

        def codegen(context, builder, signature, args):
            i32 = ir.IntType(32)
            amt = args[1]
            amt = builder.trunc(amt, i32) if s.bitwidth > 32 else builder.zext(amt, i32) if s.bitwidth < 32 else amt
            return getattr(builder, op)(args[0], amt)
        return sig, codegen
    return shift


# a << s and a >> s (logical) of an int32 or uint32 in 32 bits, for 0 <= s < 32 (LLVM leaves s >= 32 undefined: the
# caller bounds it). Numba types such shifts as 64-bit, which keeps a loop in 64-bit lanes (half the width).
shl32 = _shift32("shl")
shr32 = _shift32("lshr")


WIDE_ATTRIBUTE = '"prefer-vector-width"="512"'


@intrinsic
def wide_vectors(typingctx):
    """Let LLVM vectorize the calling function with 512-bit registers where the CPU has them (the function
    attribute "prefer-vector-width"="512"). LLVM's tuning for recent Intel CPUs prefers 256 bits, and Numba has
    no option for it; the ladder loop of the MX/NVFP4 quantizer runs ~1.6x faster on 512 bits (Xeon, AVX-512).
    No result bit changes: LLVM vectorizes only where lanes do not interact or the operations are integer (no
    kernel allows float reassociation; te_rows' fused multiply-adds round as its additions at any width). A
    jitted function calls it once; inside a prange body it reaches the outlined loop function. Without AVX-512
    the attribute is capped at what the CPU has."""
    sig = types.none()

    def codegen(context, builder, signature, args):
        # llvmlite's FunctionAttributes takes only enum attributes by name; a string attribute goes into the set
        # as the text that the IR printer writes out. An llvmlite where that no longer works keeps LLVM's width
        # (tests/test_quantize_bits.py checks that the attribute reaches the IR)
        attrs = builder.function.attributes
        if isinstance(attrs, set):
            set.add(attrs, WIDE_ATTRIBUTE)
        return context.get_dummy_value()
    return sig, codegen


@intrinsic
def prefetch(typingctx, ary, i):
    """Ask for the cache line of ary[i] (1-D) ahead of its use (llvm.prefetch: read, data, locality 2, i.e. kept in
    L2 and up: a tile row of a large input outgrows L1). A hint only: it never faults, and no result depends on it."""
    if not isinstance(ary, types.Array) or ary.ndim != 1 or not isinstance(i, types.Integer):
        return None
    sig = types.none(ary, i)

    def codegen(context, builder, signature, args):
        a = context.make_array(ary)(context, builder, args[0])
        idx = context.cast(builder, args[1], signature.args[1], types.intp)
        ptr = cgutils.get_item_pointer2(context, builder, data=a.data, shape=cgutils.unpack_tuple(builder, a.shape),
                                        strides=cgutils.unpack_tuple(builder, a.strides), layout=ary.layout,
                                        inds=[idx], wraparound=False, boundscheck=False)
        i32 = ir.IntType(32)
        fnty = ir.FunctionType(ir.VoidType(), [ptr.type, i32, i32, i32])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0")
        builder.call(fn, [ptr, i32(0), i32(2), i32(1)])
        return context.get_dummy_value()
    return sig, codegen
