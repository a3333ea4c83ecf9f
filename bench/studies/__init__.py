"""One-off studies: each module is a self-contained measurement that the docs cite as the
source of a figure, kept so that the figure can be made again. They are not part of the
``dropout-bench`` harness (``bench/``: one grid, one CSV, plots and a summary); they use only
the public names of ``kernels`` and ``reference``. Run each as a module, on a quiet machine:

``python -m bench.studies.crossover``
    where the CPU thread pool starts to pay: serial against parallel forward kernel per
    size (the threshold recorded as ``kernels.threads.PARALLEL_MIN``; README).
``python -m bench.studies.placement [--log2n 24] [--rounds 15]``
    whether the CPU kernels' speed depends on the arrays' offsets within a page (README,
    docs/CPU_KERNELS.md).
``python -m bench.studies.philox_speed [--sizes 24 26] [--dtypes float32 float64] [--avx2]``
    the CPU kernels against a same-run parallel copy, and the Philox tile fill alone in
    cycles per block (docs/CPU_KERNELS.md).
``python -m bench.studies.dask_scale {big,compare,all} ...``
    the "dask" backend at scale: an array larger than memory, and the in-memory kernels
    against Dask workers (README, docs/DASK.md, reports/dask/). ``--help`` lists its options.
"""
