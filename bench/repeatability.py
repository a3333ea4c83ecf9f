"""Do two runs of ``dropout-bench`` agree? ``python -m bench.repeatability RUN1/results.csv RUN2/results.csv``

Prints, for the CPU headline rows (2^24 float32, p = 0.5: forward and backward per mask
format) and the "as called" rows, each run's side-by-side % of the copy with its p20-p80
interval and number of pairs, and whether the two intervals overlap: the check that a figure
quoted from one run would be found again by the next.
"""

from __future__ import annotations

import argparse

import pandas as pd

OPERATIONS = ("forward", "backward", "forward_alloc")


def headline(df: pd.DataFrame, backend: str = "cpu", n: int = 2**24) -> pd.DataFrame:
    d = df[(df.backend == backend) & (df.n == n) & (df.p == 0.5) & (df.dtype == "float32")
           & (df.study == "sweep") & df.operation.isin(OPERATIONS)]
    return d.set_index(["operation", "mask_format"])[["pct_of_copy", "pct_of_copy_p20", "pct_of_copy_p80",
                                                      "copy_pairs"]]


def compare(a: pd.DataFrame, b: pd.DataFrame) -> list[str]:
    ha, hb = headline(a), headline(b)
    lines = ["| operation | mask | run 1: % of copy [p20-p80] (pairs) | run 2 | intervals overlap |",
             "|---|---|---|---|---|"]

    def fmt(r):
        return f"{r.pct_of_copy:.0f}% [{r.pct_of_copy_p20:.0f}-{r.pct_of_copy_p80:.0f}] ({r.copy_pairs:.0f})"

    for k in ha.index:
        if k not in hb.index:
            continue
        r1, r2 = ha.loc[k], hb.loc[k]
        overlap = max(r1.pct_of_copy_p20, r2.pct_of_copy_p20) <= min(r1.pct_of_copy_p80, r2.pct_of_copy_p80)
        op = "forward as called" if k[0] == "forward_alloc" else k[0]
        lines.append(f"| {op} | {k[1]} | {fmt(r1)} | {fmt(r2)} | {'yes' if overlap else '**no**'} |")
    return lines


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("run1")
    ap.add_argument("run2")
    args = ap.parse_args(argv)
    print("\n".join(compare(pd.read_csv(args.run1), pd.read_csv(args.run2))))


if __name__ == "__main__":
    main()
