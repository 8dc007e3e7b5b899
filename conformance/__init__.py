"""fp4ref's conformance suite: golden vectors for FP4/MX kernels and hardware, after Berkeley TestFloat.

Two separate programs, as TestFloat's generator and verifier:

- the generator (:mod:`.generate`, ``fp4ref vectors generate --level N --out DIR``) builds the case catalogue
  (:mod:`.catalogue`: families of inputs aimed at the decisions the semantics make, :mod:`.cast_cases`), works
  out the expected outputs with fp4ref (cross-checked against the exact references), refuses degenerate
  families, and writes every vector as .npz, .safetensors, TestFloat-style .hex lines and $readmemh .memh files
  (:mod:`.writers`) with a MANIFEST.json;
- the verifier (:mod:`.manifest`, ``fp4ref vectors verify DIR``) checks a directory against its manifest, and
  (:mod:`.check`, ``fp4ref vectors check DIR --impl ...``) runs an implementation on the inputs and compares
  with the expected outputs. Neither imports the generator.

Levels (:mod:`.levels`): 1 is small, covers every family and is committed under vectors/; 2 is large and is
generated on demand. File formats and a worked line of each: vectors/README.md.
"""
