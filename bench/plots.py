"""PNG plots of a results frame (matplotlib, Agg backend): one function per figure."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter  # noqa: E402

from reference import vocab  # noqa: E402

from . import grid  # noqa: E402
from .rows import headline, main_p  # noqa: E402

PANELS = [  # (operation, mask label, title)
    ("forward", "none", "forward, mask not kept"),
    ("forward", "bool", "forward, bool mask written"),
    ("forward", "bits", "forward, bits mask written"),
    ("backward", "none", "backward, mask regenerated"),
    ("backward", "bool", "backward, bool mask read"),
    ("backward", "bits", "backward, bits mask read"),
]
GB_LABEL = "GB/s (bytes read + written)"
STYLE = {  # stable colours per provider
    "reference": dict(color="tab:gray", marker="s"),
    "cpu": dict(color="tab:blue", marker="o"),
    "cuda": dict(color="tab:green", marker="o"),
    "torch-cpu": dict(color="tab:orange", marker="^"),
    "torch-cuda": dict(color="tab:red", marker="^"),
    "textbook-numpy": dict(color="tab:purple", marker="d"),
}
COPY_STYLE = dict(color="black", linestyle="--", linewidth=1.2, marker=None)
COPY_STYLE_CPU = dict(color="dimgray", linestyle=":", linewidth=1.6, marker=None)
# a copy that cannot be a ceiling (bench.report.implausible_ceilings): a red cross, off the line
IMPLAUSIBLE_STYLE = dict(color="red", marker="x", linestyle="none", markersize=9, mew=2,
                         label="copy, implausible as a ceiling (disturbed)")


def _implausible(df):
    """Rows whose copy ceiling is implausible (all False for a frame without the column)."""
    return df.get("ceiling_implausible", pd.Series(False, index=df.index)).fillna(False).astype(bool)


def _copy_style(device):
    return COPY_STYLE_CPU if str(device).startswith("cpu-") else COPY_STYLE


def _style(name):
    return STYLE.get(name, dict(marker="d"))


def _pow2_axis(ax):
    ax.set_xscale("log", base=2)
    ax.xaxis.set_major_locator(LogLocator(base=2, numticks=20))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"$2^{{{int(round(np.log2(v)))}}}$" if v > 0 else ""))
    ax.xaxis.set_minor_formatter(NullFormatter())


def _log_y(ax):
    """Log y axis with plain tick labels (0.5, 2, 3000) rather than 3 x 10^3; minor ticks are
    labelled too (all of them when the axis spans less than about a decade). Call it after
    plotting, so that the data limits are known."""
    ax.set_yscale("log")
    lo, hi = ax.get_ylim()
    narrow = hi / max(lo, 1e-300) < 15
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: _num(v)))

    def minor(v, _):
        lead = f"{v:.0e}"[0]
        return _num(v) if (narrow or lead in "25") else ""

    ax.yaxis.set_minor_formatter(FuncFormatter(minor))


def _num(v: float) -> str:
    return f"{v:,.0f}" if v >= 100 else f"{v:.2g}"


def _thin_ticks(ax, sizes):
    """Label every power of two when few, every other one when many."""
    ks = sorted({int(round(np.log2(n))) for n in sizes})
    if not ks:
        return
    step = 1 if len(ks) <= 8 else 2
    ax.set_xticks([2**k for k in range(ks[0], ks[-1] + 1, step)])


def _device_suffix(df):
    devices = list(dict.fromkeys(df["device"]))
    return ", ".join(devices)


def _panels(n_cols=3):
    fig, axes = plt.subplots(2, n_cols, figsize=(5.2 * n_cols, 8.4), squeeze=False, sharey=True)
    return fig, axes


def _legend(fig, axes):
    labels = {}
    for ax in axes.flat:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                labels[lab] = h
    if labels:
        fig.legend(list(labels.values()), list(labels), loc="lower center", ncol=min(len(labels), 7),
                   frameon=False, bbox_to_anchor=(0.5, 0.0))



def _size_axes(ax, title, sizes, ylabel):
    """A panel over sizes: log2 x axis with thinned ticks, log y axis, grid, labels."""
    ax.set_title(title)
    _pow2_axis(ax)
    _thin_ticks(ax, sizes)
    ax.set_yscale("log")
    ax.grid(True, which="major", alpha=0.3)
    ax.set_xlabel("elements n (log2 scale)")
    ax.set_ylabel(ylabel)


def _finish(fig, axes, title, path) -> Path:
    """Title, one shared log axis and legend, layout, save, close: every panel figure ends so."""
    fig.suptitle(title, fontsize=13)
    _log_y(axes.flat[0])  # shared by every panel
    _legend(fig, axes)
    fig.tight_layout(rect=(0, 0.05, 1, 0.96))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)

def throughput_vs_size(df, dtype, path) -> Path | None:
    p = main_p(df)
    sel = df[(df["dtype"] == dtype) & ((df["operation"] == "copy") | np.isclose(df["p"].astype(float), p))]
    if sel.empty or sel["n"].nunique() < 2:
        return None
    fig, axes = _panels()
    copies = sel[sel["operation"] == "copy"]
    for ax, (op, mask, title) in zip(axes.flat, PANELS):
        part = sel[(sel["operation"] == op) & (sel["mask_format"] == mask)]
        for name, g in part.groupby("backend", sort=False):
            g = g.sort_values("n")
            ax.plot(g["n"], g["gb_per_s"], label=name, **_style(name))
            ax.fill_between(g["n"], g["bytes"] / g["seconds_p80"] / 1e9, g["bytes"] / g["seconds_p20"] / 1e9,
                            alpha=0.15, color=_style(name).get("color"))
        _draw_copies(ax, copies)
        _size_axes(ax, title, sel["n"], GB_LABEL)
    return _finish(fig, axes, f"Dropout throughput vs size: {dtype}, p={p:g} ({_device_suffix(sel)}); "
                   "band = p20..p80", path)


def _draw_copies(ax, copies) -> None:
    """The copy ceiling of each device; sizes whose copy is implausible as a ceiling as crosses."""
    for device, c in copies.groupby("device", sort=False):
        c = c.sort_values("n")
        bad = _implausible(c)
        label = f"copy ceiling ({'GPU' if not device.startswith('cpu-') else 'CPU'})"
        ax.plot(c["n"][~bad], c["gb_per_s"][~bad], label=label, **_copy_style(device))
        if bad.any():
            ax.plot(c["n"][bad], c["gb_per_s"][bad], **IMPLAUSIBLE_STYLE)


def speedup_vs_reference(df, dtype, path) -> Path | None:
    p = main_p(df)
    sel = df[(df["dtype"] == dtype) & (df["operation"] != "copy") & np.isclose(df["p"].astype(float), p)
             & (df["backend"] != "reference") & df["speedup_vs_reference"].notna()]
    if sel.empty:
        return None
    fig, axes = _panels()
    for ax, (op, mask, title) in zip(axes.flat, PANELS):
        part = sel[(sel["operation"] == op) & (sel["mask_format"] == mask)]
        for name, g in part.groupby("backend", sort=False):
            g = g.sort_values("n")
            ax.plot(g["n"], g["speedup_vs_reference"], label=name, **_style(name))
        ax.axhline(1.0, color="tab:gray", linestyle=":", linewidth=1.2, label="reference (1×)")
        _size_axes(ax, title, sel["n"], "speedup over NumPy reference (×, log scale)")
    return _finish(fig, axes, f"Speedup over the NumPy reference: {dtype}, p={p:g} ({_device_suffix(sel)})", path)


def throughput_vs_p(df, path, dtype="float32") -> Path | None:
    """GB/s against p, for each provider at the size where it was measured at the most p."""
    sel = df[(df["dtype"] == dtype) & (df["operation"] != "copy")]
    if sel.empty:
        return None
    counts = sel.groupby(["backend", "n"])["p"].nunique().reset_index()
    counts = counts[counts["p"] >= 3]
    if counts.empty:
        return None
    best = counts.sort_values(["p", "n"]).groupby("backend").tail(1)
    sizes = dict(zip(best["backend"], best["n"]))
    fig, axes = _panels()
    copies = df[(df["operation"] == "copy") & (df["dtype"] == dtype)]
    for ax, (op, mask, title) in zip(axes.flat, PANELS):
        part = sel[(sel["operation"] == op) & (sel["mask_format"] == mask)]
        for name, g in part.groupby("backend", sort=False):
            if name not in sizes:
                continue
            g = g[g["n"] == sizes[name]].sort_values("p")
            ax.plot(g["p"], g["gb_per_s"], label=f"{name} (n={grid.size_label(sizes[name])})", **_style(name))
        for (device, n), c in copies[copies["n"].isin(set(sizes.values()))].groupby(["device", "n"], sort=False):
            kind = "CPU" if device.startswith("cpu-") else "GPU"
            if _implausible(c).any():
                ax.axhline(c["gb_per_s"].median(), color="red", linestyle=":", linewidth=1,
                           label=f"copy ({kind}, n={grid.size_label(n)}): implausible as a ceiling")
            else:
                ax.axhline(c["gb_per_s"].median(), label=f"copy ceiling ({kind}, n={grid.size_label(n)})",
                           **_copy_style(device))
        ax.set_title(title)
        ax.set_yscale("log")
        ax.set_xlim(0, 1)
        ax.grid(True, which="major", alpha=0.3)
        ax.set_xlabel("drop probability p")
        ax.set_ylabel(GB_LABEL)
    return _finish(fig, axes, f"Dropout throughput vs p: {dtype} ({_device_suffix(sel)})", path)


def forward_vs_backward(df, path, dtype="float32") -> Path | None:
    """Bars at each device's headline size: forward and backward side by side per provider."""
    p = main_p(df)
    devices = list(dict.fromkeys(df["device"]))
    tables = [(d, *headline(df, d, dtype, p)) for d in devices]
    tables = [(d, n, rows) for d, n, rows in tables if n is not None and (rows["operation"] != "copy").any()]
    if not tables:
        return None
    masks = [("none", "mask not kept / regenerated"), ("bool", "bool mask"), ("bits", "bits mask")]
    fig, axes = plt.subplots(len(tables), 3, figsize=(15.6, 4.6 * len(tables)), squeeze=False)
    for row_axes, (device, n, rows) in zip(axes, tables):
        names = [b for b in dict.fromkeys(rows["backend"])
                 if not (rows[rows["backend"] == b]["operation"] == "copy").all()]
        copies = rows[rows["operation"] == "copy"]
        copy = copies["gb_per_s"][~_implausible(copies)]  # no line for a copy that is no ceiling
        for ax, (mask, title) in zip(row_axes, masks):
            x = np.arange(len(names))
            for k, (op, hatch) in enumerate((("forward", None), ("backward", "//"))):
                vals = []
                for name in names:
                    r = rows[(rows["backend"] == name) & (rows["operation"] == op) & (rows["mask_format"] == mask)]
                    vals.append(float(r["gb_per_s"].iloc[0]) if len(r) else np.nan)
                bars = ax.bar(x + (k - 0.5) * 0.38, vals, width=0.36, label=op, hatch=hatch,
                              color=["tab:blue", "tab:orange"][k], edgecolor="black", linewidth=0.5)
                for b, v in zip(bars, vals):
                    xc = b.get_x() + b.get_width() / 2
                    if np.isfinite(v):
                        ax.annotate(_num(v), (xc, v), ha="center", va="bottom",
                                    fontsize=8, xytext=(0, 2), textcoords="offset points")
                    else:
                        ax.annotate("n/a", (xc, 0), xycoords=("data", "axes fraction"), ha="center",
                                    va="bottom", fontsize=8, color="tab:gray", xytext=(0, 3),
                                    textcoords="offset points")
            top = np.nanmax(rows["gb_per_s"].to_numpy(dtype=float))
            if len(copy):
                ax.axhline(copy.median(), label="copy ceiling", **COPY_STYLE)
                top = max(top, copy.median())
            ax.set_xticks(x, names)
            ax.set_xlim(-0.6, len(names) - 0.4)
            ax.set_ylim(0, 1.15 * top)  # linear from 0: bar lengths compare
            ax.set_ylabel(GB_LABEL)
            no_ceiling = "; copy implausible as a ceiling: not drawn" if _implausible(copies).any() else ""
            ax.set_title(f"{title}\n{device}, n={grid.size_label(n)}, {dtype}, p={p:g}{no_ceiling}", fontsize=10)
            ax.grid(True, axis="y", which="major", alpha=0.3)
    fig.suptitle("Forward vs backward at the headline size (n/a: not supported by that provider)", fontsize=13)
    _legend(fig, axes)
    fig.tight_layout(rect=(0, 0.06, 1, 0.95))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


VARIANT_STYLE = {"": dict(linestyle="-"), "channel": dict(linestyle="--"), "inplace": dict(linestyle=":")}


def variants_vs_size(df, path) -> Path | None:
    """Elementwise vs channel vs in place over size: one panel per (direction, mask), a colour
    per provider and a line style per variant, the copy ceiling drawn (float32 where measured,
    at the main p)."""
    p = main_p(df)
    var = df[df["operation"].isin(grid.CHANNEL + grid.INPLACE)]
    if var.empty:
        return None
    dtypes = list(dict.fromkeys(var["dtype"]))
    dtype = "float32" if "float32" in dtypes else dtypes[0]
    sel = df[(df["dtype"] == dtype) & ((df["operation"] == "copy") | np.isclose(df["p"].astype(float), p))]
    sizes = sorted(set(sel.loc[sel["operation"].isin(grid.CHANNEL + grid.INPLACE), "n"]))
    if len(sizes) < 2:
        return None
    sel = sel[sel["n"].isin(sizes)]
    fig, axes = _panels()
    copies = sel[sel["operation"] == "copy"]
    for ax, (direc, mask, title) in zip(axes.flat, PANELS):
        part = sel[(sel["operation"].map(grid.direction) == direc) & (sel["mask_format"] == mask)
                   & sel["operation"].isin(grid.OPERATIONS)]
        for (name, op), g in part.groupby(["backend", "operation"], sort=False):
            g = g.sort_values("n")
            v = grid.variant(op)
            style = dict(_style(name), **VARIANT_STYLE[v])
            ax.plot(g["n"], g["gb_per_s"], label=f"{name}, {grid.VARIANTS[v]}", **style)
        _draw_copies(ax, copies)
        _size_axes(ax, title, sel["n"], GB_LABEL)
    return _finish(fig, axes, f"Elementwise (solid) vs channel (dashed) vs in place (dotted): {dtype}, p={p:g} "
                   f"({_device_suffix(sel)})", path)


def per_call(df, path) -> Path | None:
    """Microseconds per call against size (log-log), forward and backward, a line per provider
    and call (bench.study_tables.PER_CALL_ROWS), the size where bandwidth takes over circled."""
    from . import study_tables

    devices = [d for d in dict.fromkeys(df["device"]) if study_tables.per_call_series(df, d)]
    if not devices:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(14, 5.6), squeeze=False, sharey=True)
    sizes = []
    for device in devices:
        for (backend, op, mask), r in study_tables.per_call_series(df, device).items():
            direc = grid.direction(op)
            panels = [axes[0, 0], axes[0, 1]] if direc == "copy" else [axes[0, 0 if direc == "forward" else 1]]
            style = dict(COPY_STYLE) if direc == "copy" else dict(_style(backend))
            if op == "forward_alloc":
                style["linestyle"] = "--"
            if mask == "bool":
                style["marker"] = "v"
            label = (f"{backend}: {study_tables.call_label(backend, str(r['kind'].iloc[0]), op, mask)}".replace("`", "")
                     + (f" ({device})" if len(devices) > 1 else ""))
            us = r["seconds_median"].to_numpy(dtype=float) * 1e6
            sizes += list(r["n"])
            bw = study_tables.bandwidth_from(r["n"], r["seconds_median"])
            for ax in panels:
                (line,) = ax.plot(r["n"], us, label=label, **style)
                if bw:
                    y = float(us[list(r["n"]).index(bw)])
                    ax.plot([bw], [y], marker="o", markersize=14, markerfacecolor="none",
                            markeredgecolor=line.get_color(), linestyle="none")
    for ax, title in zip(axes.flat, ("forward", "backward")):
        _size_axes(ax, f"{title} (circle: bandwidth takes over)", sizes, "µs per call (log scale)")
    fig.suptitle(f"Time per call at layer sizes, float32 ({', '.join(devices)})", fontsize=13)
    _log_y(axes.flat[0])
    handles = {}
    for ax in axes.flat:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(lab, h)
    fig.legend(list(handles.values()), list(handles), loc="lower center", ncol=3, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.04 + 0.035 * ((len(handles) + 2) // 3), 1, 0.95))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def write_all(df, out_dir) -> list[Path]:
    out_dir = Path(out_dir)
    if "study" in df:  # the under-load and idle-threads rows have their own tables
        df = df[~df["study"].isin(grid.THREAD_STUDIES)]
    paths = []
    dtypes = [d for d in vocab.DTYPES if d in set(df["dtype"])]
    for dtype in dtypes:
        paths.append(throughput_vs_size(df, dtype, out_dir / f"throughput_vs_size_{dtype}.png"))
    for dtype in dtypes:
        paths.append(speedup_vs_reference(df, dtype, out_dir / f"speedup_vs_reference_{dtype}.png"))
    paths.append(variants_vs_size(df, out_dir / "variants_vs_size.png"))
    paths.append(throughput_vs_p(df, out_dir / "throughput_vs_p.png"))
    paths.append(forward_vs_backward(df, out_dir / "forward_vs_backward.png"))
    paths.append(per_call(df, out_dir / "per_call.png"))
    return [p for p in paths if p is not None]
