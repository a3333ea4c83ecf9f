"""The summary's tables of the sweep's studies: as called, under load, per call.

- **As called**: ``y, mask = dropout_forward(x, p, seed=s)`` (a new output and a new bool
  mask per call; and with ``mask_format=None``) against ``np.copy(x)``, a copy that allocates
  its output, side by side; next to it the same size's ``out=`` forward against the ``out=`` copy.
- **Under load** (``bench.underload``): the kernel and the copy with all threads and with one,
  while a process of ours spins on one core: median and p80 per call, the p80 ratio and the
  per-pair ratio.
- **Per call**: microseconds per call at 2^8..2^16 (:data:`bench.grid.PER_CALL_SIZES`), forward
  and backward, for every provider, and where bandwidth takes over: the first size from which
  the time per element falls by less than :data:`BANDWIDTH_DROP` at the next size.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from . import grid
from .rows import KIND_ORDER, is_gpu_device, main_p

#: Time per element that falls by less than this fraction from one per-call size to the
#: next (4x the elements) marks where bandwidth, not the per-call cost, sets the time.
BANDWIDTH_DROP = 0.25

PER_CALL_ROWS = [  # (operation, mask, words)
    ("forward", "none", "forward, `out=`, mask not kept"),
    ("forward_alloc", "none", "forward as called, `mask_format=None`"),
    ("forward_alloc", "bool", "forward as called (new output and bool mask)"),
    ("backward", "none", "backward, regenerated, `out=`"),
    ("backward", "bool", "backward, stored bool mask, `out=`"),
    ("copy", "none", "copy, `out=`"),
]


def _us(s) -> str:
    s = float(s)
    if math.isnan(s):
        return "—"
    us = s * 1e6
    return f"{us:,.0f}" if us >= 100 else f"{us:.3g}"


def bandwidth_from(ns, seconds, drop: float = BANDWIDTH_DROP):
    """The first size from which time per element falls by less than ``drop`` at the next size
    (None when it keeps falling faster up to the largest size, or with fewer than 2 sizes)."""
    pts = sorted((int(n), float(t)) for n, t in zip(ns, seconds) if np.isfinite(t) and t > 0)
    for (n0, t0), (n1, t1) in zip(pts, pts[1:]):
        if t1 / n1 > (1.0 - drop) * (t0 / n0):
            return n0
    return None


def _rows(df, device, dtype="float32"):
    p = main_p(df)
    study = df.get("study", pd.Series("sweep", index=df.index)).fillna("sweep")
    return df[(df["device"] == device) & (df["dtype"] == dtype) & (study == "sweep")
              & (df["operation"].isin(grid.COPIES) | np.isclose(df["p"].astype(float), p))]


def per_call_series(df, device):
    """{(backend, operation, mask): rows at the per-call sizes, by n} on ``device`` (float32)."""
    on = _rows(df, device)
    on = on[on["n"].isin(grid.PER_CALL_SIZES)]
    out = {}
    order = on.assign(_k=on["kind"].map(KIND_ORDER).fillna(9)).sort_values(["_k", "backend"])
    for backend in dict.fromkeys(order["backend"]):
        for op, mask, _ in PER_CALL_ROWS:
            if op == "forward_alloc" and (on.loc[on["backend"] == backend, "kind"] == "peer").any():
                continue  # PyTorch always allocates: its forward row is already "as called"
            r = on[(on["backend"] == backend) & (on["operation"] == op) & (on["mask_format"] == mask)]
            if r["n"].nunique() >= 2:
                out[(backend, op, mask)] = r.sort_values("n")
    return out


def call_label(backend: str, kind: str, op: str, mask: str) -> str:
    """How a per-call row is called (PyTorch and --impl rows have their own APIs)."""
    label = {(o, m): w for o, m, w in PER_CALL_ROWS}[(op, mask)]
    if kind == "impl":
        label = label.replace("`out=`, ", "its own API, ")
    if backend.startswith("torch-") and op == "forward":
        label = "`F.dropout` (new output, mask not kept)"
    elif backend.startswith("torch-") and op == "backward":
        label = "`native_dropout_backward` (stored bool mask)"
    return label


def per_call_table(df, device, report) -> list[str]:
    series = per_call_series(df, device)
    if not series:
        return []
    sizes = sorted({int(n) for r in series.values() for n in r["n"]})
    lo, hi = sizes[0], sizes[-1]
    lines = [
        f"### {device}: microseconds per call, float32, p = {main_p(df):g}",
        "",
        f"Median µs per call (a sample is the mean of a calibrated number of back-to-back calls). "
        f"*bandwidth from*: the first size from which the time per element falls by less than "
        f"{BANDWIDTH_DROP:.0%} at the next size (4x the elements): below it the per-call cost "
        f"dominates. Side by side: speedup over PyTorch at {grid.size_label(lo)} and % of the copy "
        f"at {grid.size_label(hi)} (`out=` copy; `np.copy(x)` for the as-called rows), median [p20–p80] (pairs).",
        "",
        "| provider | call | " + " | ".join(grid.size_label(n) for n in sizes)
        + f" | bandwidth from | vs PyTorch at {grid.size_label(lo)} | % of copy at {grid.size_label(hi)} |",
        "| --- | --- | " + " | ".join("---:" for _ in sizes) + " | ---: | ---: | ---: |",
    ]
    for (backend, op, mask), r in series.items():
        by_n = dict(zip(r["n"].astype(int), r["seconds_median"]))
        cells = [_us(by_n.get(n, math.nan)) for n in sizes]
        bw = bandwidth_from(r["n"], r["seconds_median"])
        small, big = r[r["n"] == lo], r[r["n"] == hi]
        vs = report._peer(small.iloc[0]) if len(small) else "—"
        pct = report._pct(big.iloc[0]) if len(big) and op not in grid.COPIES else "—"
        label = call_label(backend, str(r["kind"].iloc[0]), op, mask)
        lines.append(f"| {backend} | {label} | " + " | ".join(cells)
                     + f" | {grid.size_label(bw) if bw else f'> {grid.size_label(hi)}'} | {vs} | {pct} |")
    return lines + [""]


def as_called_table(df, device, report) -> list[str]:
    on = _rows(df, device)
    calls = on[on["operation"].isin(grid.AS_CALLED)]
    if calls.empty:
        return []
    n = int(calls["n"].max())
    at = on[on["n"] == n]
    lines = [
        f"### {device}: as called, n = {grid.size_label(n)} ({n:,}), float32",
        "",
        "`y, mask = dropout_forward(x, p, seed=s)` as users write it: a new output and a new bool "
        "mask each call (and with `mask_format=None`: a new output), against `np.copy(x)`, a copy "
        "that allocates its output, timed side by side; next to it the same size's `out=` forward "
        "against the `out=` copy. PyTorch's `F.dropout` / `native_dropout` always allocate.",
        "",
        "| provider | mask | median time | GB/s (indicative) | % of `np.copy(x)` [p20–p80] (pairs) "
        "| speedup vs PyTorch [p20–p80] | `out=` forward: % of `out=` copy |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    rows = at[at["operation"].isin(grid.AS_CALLED)]
    rows = rows.assign(_k=rows["kind"].map(KIND_ORDER).fillna(9),
                       _m=rows["mask_format"].map({"none": 0, "bool": 1, "bits": 2}))
    for r in rows.sort_values(["_k", "backend", "_m"]).itertuples(index=False):
        out_fwd = at[(at["backend"] == r.backend) & (at["operation"] == "forward")
                     & (at["mask_format"] == r.mask_format)]
        mask = "not kept" if r.mask_format == "none" else r.mask_format
        lines.append(f"| {r.backend} | {mask} | {report._fmt_time(r.seconds_median)} | {report._gbs(r.gb_per_s)} "
                     f"| {report._pct(r)} | {report._peer(r)} "
                     f"| {report._pct(out_fwd.iloc[0]) if len(out_fwd) else '—'} |")
    copy = at[at["operation"] == "copy_alloc"]
    if len(copy):
        c = copy.iloc[0]
        lines += ["", f"`np.copy(x)`: {report._fmt_time(c['seconds_median'])} per call, "
                  f"{report._gbs(c['gb_per_s'])} GB/s (indicative)."]
    return lines + [""]


def _thread_pairs(df, study: str):
    """The rows of one threads study (bench/underload.py), their largest thread count, and per
    (backend, n) its all-threads row and its 1-thread row."""
    rows = df[df.get("study", pd.Series("", index=df.index)) == study]
    if rows.empty:
        return rows, 0, []
    most = int(rows["threads"].max())
    pairs = []
    for (backend, n), g in rows.groupby(["backend", "n"], sort=False):
        t_most, t_one = g[g["threads"] == most], g[g["threads"] == 1]
        if len(t_most) and len(t_one):
            pairs.append((backend, grid.size_label(int(n)), t_most.iloc[0], t_one.iloc[0]))
    return rows, most, pairs


def under_load_table(df, report) -> list[str]:
    ul, most, pairs = _thread_pairs(df, "under-load")
    if ul.empty:
        return []
    load = pd.to_numeric(ul["other_load"], errors="coerce")
    core = ul["busy_core"].dropna()
    lines = [
        "## Under load", "",
        f"A busy process of ours spins on one core{f' (core {int(core.iloc[0])}, pinned)' if len(core) else ''} "
        f"while each size times four calls side by side, one call per sample: the `cpu` forward "
        f"(mask not kept, `out=`) and the copy, each with {most} threads and with 1 "
        f"(`numba.set_num_threads`, restored afterwards). Other processes' load during these rows: "
        f"{load.min():.2f} to {load.max():.2f} cores (ours spinning included).",
        "",
        f"| provider | n | {most} threads: median | {most} threads: p80 | 1 thread: median | 1 thread: p80 "
        f"| p80 {most}t / p80 1t | per pair {most}t / 1t [p20–p80] |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for backend, size, a, b in pairs:
        ratio = a["seconds_p80"] / b["seconds_p80"]
        pair = report._ratio_cell(a["vs_1_thread"], a["vs_1_thread_p20"], a["vs_1_thread_p80"],
                                  a["repeats"], ".3g", "×")
        lines.append(f"| {backend} | {size} | {report._fmt_time(a['seconds_median'])} "
                     f"| {report._fmt_time(a['seconds_p80'])} | {report._fmt_time(b['seconds_median'])} "
                     f"| {report._fmt_time(b['seconds_p80'])} | {ratio:.3g}× | {pair} |")
    return lines + [""]


def idle_threads_table(df, report) -> list[str]:
    """What a second thread gives on free cores: the same four calls as under load, no spinner."""
    it, most, pairs = _thread_pairs(df, "idle-threads")
    if it.empty:
        return []
    load = pd.to_numeric(it["other_load"], errors="coerce")
    lines = [
        f"## {most} threads over 1, idle", "",
        f"The same four calls as under load with no busy process of ours, one sample each in turn: "
        f"the speed-up of {most} threads over 1 is the 1-thread time over the {most}-thread time of "
        f"each pair. Other processes' load during these rows: {load.min():.2f} to {load.max():.2f} cores.",
        "",
        f"| provider | n | {most} threads: median | 1 thread: median | speed-up per pair [p20–p80] (pairs) |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    for backend, size, a, b in pairs:
        # the rows hold time(all) / time(1) per pair; the speed-up is its inverse (p20 and p80 swap)
        inv = [1.0 / float(a[c]) if float(a[c]) > 0 else float("nan")
               for c in ("vs_1_thread", "vs_1_thread_p80", "vs_1_thread_p20")]
        cell = report._ratio_cell(inv[0], inv[1], inv[2], a["repeats"], ".3g", "×")
        lines.append(f"| {backend} | {size} | {report._fmt_time(a['seconds_median'])} "
                     f"| {report._fmt_time(b['seconds_median'])} | {cell} |")
    return lines + [""]


def sections(df, report) -> list[str]:
    """The studies' sections of summary.md (empty where not measured)."""
    lines = []
    cpu_and_gpu = sorted(dict.fromkeys(df["device"]), key=lambda d: not is_gpu_device(d))
    called = [line for d in cpu_and_gpu for line in as_called_table(df, d, report)]
    if called:
        lines += ["## As called", ""] + called
    lines += under_load_table(df, report)
    lines += idle_threads_table(df, report)
    per_call = [line for d in cpu_and_gpu for line in per_call_table(df, d, report)]
    if per_call:
        lines += ["## Per call", ""] + per_call
    return lines
