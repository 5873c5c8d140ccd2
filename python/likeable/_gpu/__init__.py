"""The GPU path, by concept: where a call runs (``device``), device arrays and CSR rows
(``arrays``), encode/decode (``encode``), scoring and exact search (``scoring``).

CuPy owns allocation (its memory pool), streams (every call runs on CuPy's current stream) and
the matrix products (cuBLAS through CuPy's binding); likeable's kernels (``likeable._cuda``)
select, score sparse rows against dense vectors, and decode. Estimators reach it through one
helper, :func:`likeable._gpu.device.dispatch`; ``likeable.gpu`` is the public face.
"""
