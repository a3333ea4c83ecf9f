"""Which rows of a results frame a table or a plot shows, and in what order: the headline
size of each device, the main p, and the order of operations, masks and kinds. Shared by
``bench.report`` (summary.md) and ``bench.plots`` (the PNGs): plots never imports report (report
imports plots to draw), so neither module needs the other in a circle.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from . import grid

HEADLINE_N = {"cpu": 2**24, "cuda": 2**28}
HEADLINE_P = 0.5
OP_ORDER = {"copy": 0, "forward": 1, "forward_channel": 2, "forward_inplace": 3,
            "backward": 4, "backward_channel": 5, "backward_inplace": 6}
MASK_ORDER = {"none": 0, "bool": 1, "bits": 2}
KIND_ORDER = {"backend": 0, "impl": 1, "peer": 2, "ceiling": 3}


def is_gpu_device(device: str) -> bool:
    return not str(device).startswith("cpu-")


def main_p(df) -> float:
    """The p most rows were measured at: :data:`HEADLINE_P` where any were, else the most common one."""
    ps = df.loc[df["operation"] != "copy", "p"].dropna().astype(float)
    return HEADLINE_P if ps.empty or np.isclose(ps, HEADLINE_P).any() else float(ps.mode().iloc[0])


def order(df: pd.DataFrame) -> pd.DataFrame:
    """Rows by operation, then mask, then kind (backends, implementations, peers, ceilings), then name."""
    return df.assign(
        _k=df["kind"].map(KIND_ORDER).fillna(9),
        _o=df["operation"].map(OP_ORDER).fillna(9),
        _m=df["mask_format"].map(MASK_ORDER).fillna(9),
    ).sort_values(["_o", "_m", "_k", "backend"]).drop(columns=["_k", "_o", "_m"])


def headline(df: pd.DataFrame, device: str, dtype="float32", p=HEADLINE_P):
    """(n, rows) at the headline size for ``device``: 2^28 on a GPU, 2^24 on a CPU, or the
    largest size measured there if that one was not. Elementwise rows and the copy only (the
    channel and in-place rows have their own table, ``bench.report.variants``)."""
    on = df[(df["device"] == device) & (df["dtype"] == dtype)
            & df["operation"].isin(("copy",) + grid.ELEMENTWISE)
            & ((df["operation"] == "copy") | np.isclose(df["p"].astype(float), p))]
    if on.empty:
        return None, on
    want = HEADLINE_N["cuda" if is_gpu_device(device) else "cpu"]
    sizes = set(on["n"])
    n = want if want in sizes else max(sizes)
    rows = on[on["n"] == n]
    return n, order(rows)
