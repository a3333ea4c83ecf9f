"""Records -> long-format CSV, plots and ``summary.md`` in one report folder."""

from __future__ import annotations

import datetime
import math
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from . import grid, load
from .rows import KIND_ORDER, MASK_ORDER, headline, is_gpu_device, main_p

# One row per measured point; the first block is what the issue asks for, in that order.
COLUMNS = [
    "backend", "operation", "mask_format", "dtype", "n", "p",
    "seconds_median", "seconds_p20", "seconds_p80",
    "elements_per_s", "bytes", "gb_per_s", "pct_of_copy",
    "device", "numpy", "numba", "numba_cuda", "torch", "threads", "timestamp",
    # extras
    "ceiling_implausible", "speedup_vs_reference", "kind", "repeats", "inner", "clock", "warmup",
    "host_seconds_per_call", "other_load", "passes", "pass_spread", "source",
    # side by side (bench.sweep): % of copy and speedup over the peer, per pair
    "pct_of_copy_p20", "pct_of_copy_p80", "copy_pairs", "pct_method", "ceiling",
    "speedup_vs_peer", "speedup_vs_peer_p20", "speedup_vs_peer_p80", "peer_pairs", "peer", "ratio_spread",
    # what was pinned or read: threads, threading layer, CPU, load averages; which study
    "study", "cpu_model", "numba_threads", "threading_layer", "torch_threads", "loadavg_before", "loadavg_after",
    "vs_1_thread", "vs_1_thread_p20", "vs_1_thread_p80", "busy_core", "busy_processes",
    "visits",  # times the point was measured (its pairs pooled): > passes for the revisited headline points
]
#: p80 / p20 of a side-by-side ratio above which the summary flags its spread as wide.
SPREAD = 1.25
SPREAD_MARK = "↔"

# A dropout moves at least a copy's bytes, so a copy it beats by this factor, or one this many
# times slower than a copy of more elements, was disturbed (on a loaded machine a copy can hit
# an ~8 ms wall of thread hand-offs) and is no ceiling: no "% of copy" is given against it.
IMPLAUSIBLE = 2.0
NO_CEILING = "n/a (ceiling implausible)"


def frame(records) -> pd.DataFrame:
    """A DataFrame of ``records`` with the derived columns filled in."""
    df = pd.DataFrame.from_records(list(records))
    if df.empty:
        return pd.DataFrame(columns=COLUMNS)
    for col in COLUMNS:
        if col not in df:
            df[col] = np.nan
    df["mask_format"] = df["mask_format"].map(lambda m: grid.mask_label(grid.mask_from_label(m)))
    df["n"] = df["n"].astype("int64")
    df["bytes"] = df["bytes"].astype("int64")
    df["elements_per_s"] = df["n"] / df["seconds_median"]
    df["gb_per_s"] = df["bytes"] / df["seconds_median"] / 1e9
    df["study"] = _text(df["study"]).replace("", "sweep")
    ops = df["operation"].astype(str)
    df["ceiling"] = [c if isinstance(c, str) and c else ("" if o in grid.COPIES else grid.ceiling_op(o))
                     for c, o in zip(df["ceiling"], ops)]
    paired = pd.to_numeric(df["copy_pairs"], errors="coerce").fillna(0) > 0
    df["copy_pairs"] = pd.to_numeric(df["copy_pairs"], errors="coerce").fillna(0).astype("int64")
    df["peer_pairs"] = pd.to_numeric(df["peer_pairs"], errors="coerce").fillna(0).astype("int64")
    problems = implausible_ceilings(df)
    keyed = pd.Series([k in problems for k in zip(df["device"], df["dtype"], df["n"])], index=df.index)
    # a side-by-side ratio does not lean on the copy row (a kernel may beat a copy that stalls
    # for a scheduler slice in the same instants: that is what was measured)
    df["ceiling_implausible"] = keyed & ~paired
    fallback = _pct_of_copy(df)
    df["pct_of_copy"] = pd.to_numeric(df["pct_of_copy"], errors="coerce").where(paired, fallback)
    df["pct_of_copy"] = df["pct_of_copy"].mask(df["ceiling_implausible"])
    df["pct_method"] = np.where(paired, "pairs", np.where(df["pct_of_copy"].notna(), "medians", ""))
    with np.errstate(divide="ignore", invalid="ignore"):
        spread = np.fmax(pd.to_numeric(df["pct_of_copy_p80"], errors="coerce")
                         / pd.to_numeric(df["pct_of_copy_p20"], errors="coerce"),
                         pd.to_numeric(df["speedup_vs_peer_p80"], errors="coerce")
                         / pd.to_numeric(df["speedup_vs_peer_p20"], errors="coerce"))
    df["ratio_spread"] = spread
    for col in ("peer", "threading_layer", "cpu_model"):
        df[col] = _text(df[col])
    df["speedup_vs_reference"] = _speedup_vs_reference(df)
    for col in ("numpy", "numba", "numba_cuda", "torch"):
        df[col] = _text(df[col])
    df["threads"] = df["threads"].astype("Int64")
    return df[COLUMNS + [c for c in df.columns if c not in COLUMNS]]


def _text(col: pd.Series) -> pd.Series:
    """A column as strings, '' where missing."""
    return col.astype(object).where(col.notna(), "").astype(str)


def _pct_of_copy(df: pd.DataFrame) -> pd.Series:
    """100 * GB/s over the GB/s of the row's ceiling (``copy``, or ``copy_alloc`` for the as-called
    rows) on the same device, dtype and size, from the medians: the fallback where no
    side-by-side pairs exist (pytest-benchmark JSON); a copy row is its own ceiling."""
    sweep = ~df["study"].isin(grid.THREAD_STUDIES) if "study" in df else pd.Series(True, index=df.index)
    copies = df[df["operation"].isin(grid.COPIES) & sweep].groupby(
        ["device", "operation", "dtype", "n"])["gb_per_s"].median()
    keys = list(zip(df["device"], df["ceiling"], df["dtype"], df["n"]))
    ceiling = np.array([copies.get(k, np.nan) for k in keys], dtype=float)
    pct = pd.Series(100.0 * df["gb_per_s"].to_numpy() / ceiling, index=df.index)
    own = df["operation"].isin(grid.COPIES) & np.isfinite(df["gb_per_s"].astype(float))
    return pct.mask(own, 100.0)


def beats_ceiling(gb_per_s, copy_gb_per_s) -> bool:
    """True when a point's GB/s is too far above its copy's for the copy to be a ceiling."""
    return gb_per_s > IMPLAUSIBLE * copy_gb_per_s


def implausible_ceilings(df: pd.DataFrame) -> dict:
    """{(device, dtype, n): why} for each copy that cannot be the ceiling of its size."""
    problems = {}
    for (device, dtype), copies in df[df["operation"] == "copy"].groupby(["device", "dtype"]):
        same = df[(df["device"] == device) & (df["dtype"] == dtype) & df["operation"].isin(grid.OPERATIONS)
                  & ~df.get("study", pd.Series("sweep", index=df.index)).isin(grid.THREAD_STUDIES)]
        for c in copies.itertuples(index=False):
            at_n = same[same["n"] == c.n]
            fastest = at_n.loc[at_n["gb_per_s"].idxmax()] if at_n["gb_per_s"].notna().any() else None
            larger = copies[copies["n"] > c.n].sort_values("seconds_median").head(1)
            if fastest is not None and beats_ceiling(fastest["gb_per_s"], c.gb_per_s):
                why = (f"{fastest['backend']} {fastest['operation']} (mask {fastest['mask_format']}) ran at "
                       f"{fastest['gb_per_s'] / c.gb_per_s:,.0f}x the copy's GB/s")
            elif len(larger) and c.seconds_median > IMPLAUSIBLE * larger["seconds_median"].iloc[0]:
                why = (f"the copy took {c.seconds_median / larger['seconds_median'].iloc[0]:,.0f}x as long as "
                       f"the copy of {grid.size_label(larger['n'].iloc[0])} elements")
            else:
                continue
            problems[(device, dtype, c.n)] = f"{why} ({_fmt_time(c.seconds_median)} per copy)"
    return problems


def _speedup_vs_reference(df: pd.DataFrame) -> pd.Series:
    """Reference time over this row's time for the same work (NaN where not measured)."""
    ref = df[df["backend"] == "reference"]
    cols = ["operation", "mask_format", "dtype", "n", "p"]
    ref_t = ref.groupby(cols, dropna=False)["seconds_median"].median()
    out = []
    for row in df[cols + ["seconds_median"]].itertuples(index=False):
        key = tuple(row[:-1])
        t = ref_t.get(key, np.nan) if row.operation != "copy" else np.nan
        out.append(t / row.seconds_median)
    return pd.Series(out, index=df.index, dtype=float)


def write_csv(df: pd.DataFrame, path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(path, index=False, float_format="%.6g")
    return path


def read_csv(path) -> pd.DataFrame:
    df = pd.read_csv(path, keep_default_na=False, na_values=[""])
    df["mask_format"] = df["mask_format"].fillna("none")
    return df


def report_device(df: pd.DataFrame) -> str:
    """The folder name for a report: the GPU's when GPU rows are present, else the CPU's."""
    devices = list(dict.fromkeys(df["device"]))
    gpus = [d for d in devices if is_gpu_device(d)]
    return (gpus or devices or ["unknown"])[0]


# --- summary.md ------------------------------------------------------------------------

def _fmt(x, spec, none="—"):
    if x is None or (isinstance(x, float) and math.isnan(x)) or x is pd.NA:
        return none
    return format(x, spec)


def _fmt_time(s: float) -> str:
    if s is None or math.isnan(s):
        return "—"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if s >= scale:
            return f"{s / scale:.3g} {unit}"
    return f"{s / 1e-9:.3g} ns"


def headline_table(df, device, dtype="float32", p=0.5) -> list[str]:
    n, rows = headline(df, device, dtype, p)
    if n is None:
        return [f"No {dtype} p={p:g} points measured on {device}.", ""]
    lines = [
        f"### {device}: n = {grid.size_label(n)} ({n:,}), p = {p:g}, {dtype}",
        "",
        "| provider | operation | mask | median time | GB/s (indicative) | % of copy, side by side "
        "[p20–p80] (pairs) | speedup vs PyTorch, side by side [p20–p80] | speedup vs reference |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    disturbed = False
    for r in rows.itertuples(index=False):
        mask = "—" if r.operation == "copy" else _mask_words(r.operation, r.mask_format)
        flag = ""
        if _busy(getattr(r, "other_load", None)):
            flag, disturbed = " ⚠", True
        lines.append(
            f"| {r.backend}{flag} | {r.operation} | {mask} | {_fmt_time(r.seconds_median)} "
            f"| {_gbs(r.gb_per_s)} | {_pct(r)} | {_peer(r)} "
            f"| {_fmt(r.speedup_vs_reference, '.3g')}{'×' if not _nan(r.speedup_vs_reference) else ''} |"
        )
    if disturbed:
        lines += ["", f"⚠: other processes used ≥ {load.BUSY} cores during that measurement (`other_load`)."]
    return lines + [""]


def variants(df: pd.DataFrame, device: str, p=0.5):
    """(n, dtype, rows) for the elementwise / channel / in-place comparison on ``device``: the
    largest size that has channel or in-place rows at ``p`` (float32 where measured), and every
    row of that size, dtype and p (the copy included); ``(None, None, empty)`` without such rows."""
    on = df[(df["device"] == device)
            & ((df["operation"] == "copy") | np.isclose(df["p"].astype(float), p))]
    var = on[on["operation"].isin(grid.CHANNEL + grid.INPLACE)]
    if var.empty:
        return None, None, on.iloc[0:0]
    dtypes = list(dict.fromkeys(var["dtype"]))
    dtype = "float32" if "float32" in dtypes else dtypes[0]
    n = int(var.loc[var["dtype"] == dtype, "n"].max())
    return n, dtype, on[(on["dtype"] == dtype) & (on["n"] == n)]


def _variants_table(df, device, p=0.5) -> list[str]:
    n, dtype, rows = variants(df, device, p)
    if n is None:
        return []
    cols = [("", "elementwise"), ("channel", "channel"), ("inplace", "in place")]
    lines = [
        f"### {device}: elementwise vs channel vs in place, n = {grid.size_label(n)} ({n:,}), p = {p:g}, {dtype}",
        "",
        "GB/s (% of copy). Channel: `noise_shape = (N, C, 1, 1)` of the "
        f"`{grid.channel_map_shape(n)}` map, one decision per (sample, channel); in place: `out=x` "
        "(forward), `out=grad_y` (backward), the input restored untimed before each call.",
        "",
        "| provider | direction | mask | " + " | ".join(title for _, title in cols) + " |",
        "| --- | --- | --- | " + " | ".join("---:" for _ in cols) + " |",
    ]
    body = rows[rows["operation"] != "copy"].assign(
        _dir=lambda d: d["operation"].map(grid.direction), _k=lambda d: d["kind"].map(KIND_ORDER).fillna(9),
        _d=lambda d: d["operation"].map(grid.direction).map({"forward": 0, "backward": 1}),
        _m=lambda d: d["mask_format"].map(MASK_ORDER).fillna(9))
    keys = body.sort_values(["_k", "backend", "_d", "_m"])[["backend", "_dir", "mask_format"]].drop_duplicates()
    for backend, direc, mask in keys.itertuples(index=False):
        cells = []
        for var, _ in cols:
            op = direc if not var else f"{direc}_{var}"
            r = body[(body["backend"] == backend) & (body["operation"] == op) & (body["mask_format"] == mask)]
            if r.empty:
                cells.append("—")
                continue
            r = r.iloc[0]
            v = r["pct_of_copy"]
            pct = "" if r["ceiling_implausible"] or _nan(v) else f" ({v:,.0f}%)" if v >= 10 else f" ({v:.2g}%)"
            cells.append(f"{_gbs(r['gb_per_s'])}{pct}")
        lines.append(f"| {backend} | {direc} | {_mask_words(direc, mask)} | " + " | ".join(cells) + " |")
    copy = rows[rows["operation"] == "copy"]
    if len(copy):
        c = copy.iloc[0]
        note = " (implausible as a ceiling: no % given)" if c["ceiling_implausible"] else ""
        lines += ["", f"Copy ceiling: {_gbs(c['gb_per_s'])} GB/s ({c['backend']}){note}. "
                  "—: not measured (a provider without that variant or mask)."]
    return lines + [""]


def _get(r, name, default=math.nan):
    return r.get(name, default) if isinstance(r, (dict, pd.Series)) else getattr(r, name, default)


def _num_or_nan(x) -> float:
    try:
        return float(x)
    except (TypeError, ValueError):
        return math.nan


def wide(lo, hi) -> bool:
    """True when a side-by-side ratio's p80 / p20 exceeds :data:`SPREAD`."""
    lo, hi = _num_or_nan(lo), _num_or_nan(hi)
    return lo > 0 and hi / lo > SPREAD


def _ratio_cell(med, lo, hi, pairs, spec, unit) -> str:
    """'85% [80–90] (25)', with the spread mark where p80 / p20 > SPREAD."""
    if _nan(_num_or_nan(med)):
        return "—"
    def f(v):
        v = float(v)
        return format(v, spec) if spec != ",.0f" or abs(v) >= 10 else f"{v:.2g}"

    text = f"{f(med)}{unit}"
    if int(_num_or_nan(pairs) if not _nan(_num_or_nan(pairs)) else 0) > 0:
        text += f" [{f(lo)}–{f(hi)}] ({int(pairs)})"
        if wide(lo, hi):
            text += f" {SPREAD_MARK}"
    return text


def _pct(r) -> str:
    if _get(r, "ceiling_implausible", False) is True:
        return NO_CEILING
    if _get(r, "operation") in grid.COPIES:
        return "100%" if not _nan(_num_or_nan(_get(r, "pct_of_copy"))) else "—"
    return _ratio_cell(_get(r, "pct_of_copy"), _get(r, "pct_of_copy_p20"), _get(r, "pct_of_copy_p80"),
                       _get(r, "copy_pairs", 0), ",.0f", "%")


def _peer(r) -> str:
    return _ratio_cell(_get(r, "speedup_vs_peer"), _get(r, "speedup_vs_peer_p20"),
                       _get(r, "speedup_vs_peer_p80"), _get(r, "peer_pairs", 0), ".3g", "×")


def _gbs(x) -> str:
    return "—" if _nan(x) else (f"{x:,.0f}" if x >= 100 else f"{x:.3g}")


def _busy(x) -> bool:
    try:
        return float(x) >= load.BUSY
    except (TypeError, ValueError):
        return False


def _nan(x) -> bool:
    return x is None or x is pd.NA or (isinstance(x, float) and math.isnan(x))


def _mask_words(operation, mask_format) -> str:
    if grid.direction(operation) == "backward":
        return "regenerated" if mask_format == "none" else f"stored {mask_format}"
    return "not kept" if mask_format == "none" else mask_format


def _warmup_words(df: pd.DataFrame, by: str = "") -> str:
    w = pd.to_numeric(df["warmup"], errors="coerce")
    if w.isna().any() or (w < 1).any():
        return ("with no warm-up recorded for some points (their first call, which compiles a Numba "
                "kernel, may be among the timed ones)")
    lo, hi = int(w.min()), int(w.max())
    return f"after {lo if lo == hi else f'{lo} to {hi}'} untimed warm-up calls{by}"


def _sweep_timing(df: pd.DataFrame) -> str:
    passes = df["passes"].fillna(1).max()
    return (f"Timing: median of repeated samples (p20 and p80 in `results.csv`) {_warmup_words(df)}"
            + (f"; the fastest of {int(passes)} passes over the whole grid (`pass_spread` in "
               "`results.csv`: slowest over fastest pass)" if passes > 1 else "")
            + ". CPU with `time.perf_counter`; GPU with CUDA events, behind a spin kernel that hides "
            "the Python launch overhead (device time; `host_seconds_per_call` is the host's), on "
            "device arrays with preallocated outputs.")


def _pytest_timing(df: pd.DataFrame) -> str:
    by = " made by the benchmark test before pytest-benchmark calibrated it"
    return ("Timing: pytest-benchmark's rounds (each the mean of a calibrated number of calls) "
            f"{_warmup_words(df, by)}: the median round, with p20 and p80 from the raw rounds where the "
            "JSON has them (`--benchmark-save-data`), else pytest-benchmark's quartiles (column `clock` "
            "says which). GPU rows are CUDA-event medians taken by the benchmark test itself "
            "(`bench.timing`: device time), not pytest-benchmark's host times.")


def _ceiling_notes(df: pd.DataFrame) -> list[str]:
    problems = implausible_ceilings(df)
    if not problems:
        return []
    lines = [f"**Implausible ceilings** (`ceiling_implausible` in `results.csv`; `% of copy` reads "
             f"\"{NO_CEILING}\" there): a dropout moves at least a copy's bytes, so a copy it beats by "
             f"over {IMPLAUSIBLE:g}x, or one taking over {IMPLAUSIBLE:g}x as long as a copy of more "
             "elements, was disturbed (the machine was busy) and is no ceiling:", ""]
    for (device, dtype, n), why in problems.items():
        lines.append(f"- `{device}` {dtype} n = {grid.size_label(n)}: {why}.")
    return lines + [""]


def _pinned_lines(df: pd.DataFrame) -> list[str]:
    """The header's threads, threading layer, CPU model and load averages (where recorded)."""
    lines = []
    sweep = df[df.get("study", pd.Series("sweep", index=df.index)).fillna("sweep") == "sweep"]
    sweep = sweep if len(sweep) else df

    def values(col):
        return [v for v in dict.fromkeys(sweep[col].dropna().astype(str)) if v not in ("", "nan", "<NA>")] \
            if col in sweep else []

    cpu, layer = values("cpu_model"), values("threading_layer")
    nthreads, tthreads = values("numba_threads"), values("torch_threads")
    bits = []
    if cpu:
        bits.append(f"CPU model {', '.join(cpu)}")
    if nthreads:
        bits.append(f"Numba threads {', '.join(str(int(float(v))) for v in nthreads)}"
                    + (f" (threading layer {', '.join(layer)})" if layer else ""))
    if tthreads:
        bits.append(f"PyTorch threads {', '.join(str(int(float(v))) for v in tthreads)}")
    if bits:
        lines.append("Pinned / read: " + "; ".join(bits) + " (columns `cpu_model`, `numba_threads`, "
                     "`threading_layer`, `torch_threads`).")
    before = pd.to_numeric(df.get("loadavg_before"), errors="coerce") if "loadavg_before" in df else None
    after = pd.to_numeric(df.get("loadavg_after"), errors="coerce") if "loadavg_after" in df else None
    if before is not None and after is not None and before.notna().any():
        lines.append(f"Load average (1 min): {before.dropna().iloc[0]:.2f} before the first point, "
                     f"{after.dropna().iloc[-1]:.2f} after the last; {min(before.min(), after.min()):.2f} to "
                     f"{max(before.max(), after.max()):.2f} during the run (`loadavg_before`, `loadavg_after`).")
    return lines


def _spread_note(df: pd.DataFrame) -> list[str]:
    wide_rows = df[pd.to_numeric(df.get("ratio_spread", pd.Series(dtype=float)), errors="coerce") > SPREAD] \
        if "ratio_spread" in df else df.iloc[0:0]
    paired = int((df.get("copy_pairs", pd.Series(0, index=df.index)).fillna(0) > 0).sum())
    if not paired:
        return []
    visits = pd.to_numeric(df.get("visits", pd.Series(dtype=float)), errors="coerce")
    passes = pd.to_numeric(df.get("passes", pd.Series(dtype=float)), errors="coerce").fillna(1)
    revisited = int((visits > passes).sum())
    text = ("Side-by-side ratios: every `% of copy` and `speedup vs PyTorch` is the median over pairs of "
            "samples taken in turn (kernel and ceiling, or kernel and peer, each pair of callables in a "
            "set of its own; the order reversed every other round), the "
            "ratio of each pair, with p20–p80 and the number of pairs; absolute times and GB/s are each "
            "point's own samples and only indicative. "
            + (f"The {revisited} headline and as-called points of the fast backends are measured twice, at "
               f"their place in the sweep and again at its end, minutes later, their pairs pooled (column "
               f"`visits`): this machine's memory bandwidth moves by up to 2x from one minute to the next. "
               if revisited else "")
            + f"{SPREAD_MARK}: the ratio's p80 / p20 exceeds "
            f"{SPREAD:g} (a wide spread: the machine was uneven during that point); "
            f"{len(wide_rows)} of {paired} paired rows have it (column `ratio_spread`).")
    if len(wide_rows) > 0.25 * paired:
        text = f"**Wide spread in this run.** {text}"
    return [text, ""]


def write_summary(df: pd.DataFrame, out_dir, plots, *, command: str | None = None,
                  notes=()) -> Path:
    from . import study_tables

    out_dir = Path(out_dir)
    full = df
    if "study" in df:
        df = df[~df["study"].isin(grid.THREAD_STUDIES)]
    devices = list(dict.fromkeys(df["device"]))
    first = df.iloc[0] if len(df) else None
    lines = [f"# Dropout benchmarks: {report_device(df)}", ""]
    stamp = first["timestamp"] if first is not None else datetime.datetime.now().isoformat()
    lines.append(f"Measured {stamp}" + (f" with `{command}`." if command else "."))
    if first is not None:
        libs = ", ".join(f"{k.replace('_', '-')} {first[k]}" for k in ("numpy", "numba", "numba_cuda", "torch")
                         if str(first[k]))
        lines.append(f"Libraries: {libs}.")
        for device in devices:
            threads = df[(df["device"] == device) & (df["kind"] == "backend")]["threads"].dropna()
            t = f", {int(threads.iloc[0])} threads" if len(threads) else ""
            k = "GPU" if is_gpu_device(device) else "CPU"
            lines.append(f"{k}: `{device}`{t}; {int((df['device'] == device).sum())} points.")
        lines += _pinned_lines(full)
    if "other_load" in df:
        cpu_rows = df[~df["device"].map(is_gpu_device)]
        busy = int(cpu_rows["other_load"].map(_busy).sum())
        if busy:
            lines.append(f"**{busy} of {len(cpu_rows)} CPU points were measured while other processes used "
                         f"≥ {load.BUSY} cores** (column `other_load`): a parallel kernel that needs every core "
                         "then waits for scheduler time slices, so those numbers are pessimistic.")
    lines += [""] + _spread_note(df) + ["## Headline", ""]
    for device in sorted(devices, key=lambda d: not is_gpu_device(d)):
        lines += headline_table(df, device)
    variant_lines = [line for device in devices if not is_gpu_device(device)
                     for line in _variants_table(df, device, main_p(df))]
    if variant_lines:
        lines += ["## Elementwise, channel and in place", ""] + variant_lines
    lines += study_tables.sections(full, sys.modules[__name__])
    lines += _ceiling_notes(df)
    from_pytest = df["source"].astype(str).str.startswith("pytest-benchmark").all()
    lines += [
        "GB/s counts the bytes the operation must move (read + written): `2 * itemsize` per element "
        "for x and y (2 bytes for float16 and bfloat16), plus the mask written (forward) or read "
        "(backward from a stored mask): 1 byte per mask element for `bool`, 1/8 for `bits`, none "
        "when the mask is not kept or is regenerated from the seed. A channel-dropout mask has "
        "`N * C = n / 1024` elements; an in-place call moves the same bytes as the out-of-place one. "
        "PyTorch's `native_dropout` moves a bool mask "
        "(`2 * itemsize + 1`); `F.dropout` (mask not kept, or `inplace=True`) and `F.dropout2d` are "
        "counted as `2 * itemsize`, and `F.dropout2d`'s backward (`grad_y * noise`) as a backward "
        "from a stored (N, C) bool mask. "
        "`% of copy` compares with "
        + ("the fastest of the copy benchmarks (one in every comparison group) of the same size and dtype "
           "on the same device in that pytest run (a ratio of medians: `pct_method` = medians)" if from_pytest else
           "a copy of the same size and dtype on the same device, timed side by side with the point "
           "(`pct_method` = pairs)")
        + " (CPU: a Numba `prange` copy; GPU: a device-to-device copy). "
        "`speedup vs reference` is the NumPy reference's time over the provider's time for "
        "the same work (— where the reference was not run at that size).",
        "",
        (_pytest_timing(df) if from_pytest else _sweep_timing(df))
        + " Host inputs, outputs and stored masks are allocated as users allocate them "
        "(`np.empty`, then touched once before timing). Every forward call allocates the mask "
        "it returns (the API has no `out=` for the mask), and that is part of the measured time.",
        "",
    ]
    for note in notes:
        lines += [note, ""]
    if plots:
        lines += ["## Plots", ""]
        for path in plots:
            title = Path(path).stem.replace("_", " ")
            lines += [f"### {title}", "", f"![{title}]({Path(path).name})", ""]
    lines += ["Raw data: [`results.csv`](results.csv) (one row per point, long format).", ""]
    path = out_dir / "summary.md"
    path.write_text("\n".join(lines))
    return path


def write_report(df: pd.DataFrame, out_dir, *, command: str | None = None, plots: bool = True,
                 notes=()) -> dict:
    """Write ``results.csv``, the PNG plots and ``summary.md`` into ``out_dir``."""
    from . import plots as plot_mod  # matplotlib: only when a report is written

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    csv = write_csv(df, out_dir / "results.csv")
    pngs = plot_mod.write_all(df, out_dir) if plots else []
    summary = write_summary(df, out_dir, pngs, command=command, notes=notes)
    return {"csv": csv, "plots": pngs, "summary": summary}


def default_out_dir(df: pd.DataFrame, root="reports") -> Path:
    return Path(os.environ.get("DROPOUT_BENCH_REPORTS", root)) / report_device(df)
