"""Smallest bias each test detects with 80 % power at its CI sample size (markdown table).

    python -m tests.stats.power_table

Normal approximations throughout (stated per row): a two-sided test at level ALPHA detects
a shift of (z_{1-ALPHA/2} + z_{0.8}) standard errors of its statistic; the chi-square tests
use the noncentral chi-square with the noncentrality of a normal approximation of the
cells; the KS row bounds the power through the empirical CDF at one point. The keep-rate
rows are exact instead (binomial power of the exact binomial test): at p = 1e-6 the
normal approximation would be useless (~34 expected rare events at 2**25).
"""

from __future__ import annotations

import math

from scipy import optimize, stats

from . import battery, budget
from .sampling import keep_prob

POWER = 0.8


def _pct(x: float) -> str:
    v = 100 * x
    return f"{v:.0f}%" if v >= 10 else f"{v:.2g}%"


def _z():
    return stats.norm.isf(budget.ALPHA / 2) + stats.norm.ppf(POWER)


def _ncx2_lambda(df: int) -> float:
    crit = stats.chi2.isf(budget.ALPHA, df)
    return optimize.brentq(lambda lam: stats.ncx2.sf(crit, df, lam) - POWER, 1e-9, 1e5)


def _exact_keep_rate(n: int, r0: float):
    """Relative change of the rarer probability r0 that the exact binomial test (scipy
    binomtest, two-sided, level ALPHA) detects with 80 % power: (downwards, upwards).
    Downwards is None when even r = 0 is not detected."""
    alpha = budget.ALPHA

    def reject(x):
        return stats.binomtest(int(x), n, r0).pvalue < alpha

    mu = n * r0
    lo, hi = math.ceil(mu), n  # smallest x above the mean that is rejected
    while lo < hi:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if reject(mid) else (mid + 1, hi)
    x_hi = lo
    r_up = optimize.brentq(lambda r: stats.binom.sf(x_hi - 1, n, r) - POWER, r0, 1.0)
    if not reject(0):
        return None, r_up / r0 - 1
    lo, hi = 0, math.floor(mu)  # largest x below the mean that is rejected
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if reject(mid) else (lo, mid - 1)
    x_lo = lo
    r_down = optimize.brentq(lambda r: stats.binom.cdf(x_lo, n, r) - POWER, 0.0, r0)
    return 1 - r_down / r0, r_up / r0 - 1


def detectable(probe, n: int) -> tuple[str, str]:
    """(bias, what the bias is) for one probe at sample size n."""
    fam, p = probe.family, probe.p
    q = keep_prob(p) if p == p else float("nan")
    z = _z()
    if fam.startswith("keep_rate"):
        down, up = _exact_keep_rate(n, min(q, 1 - q))
        which = "drop prob. p" if q > 0.5 else "keep prob. q"
        down = f"-{_pct(down)}" if down is not None else "none"
        return f"{down} / +{_pct(up)}", f"rel. error of the rarer {which} (exact binomial)"
    if fam.startswith("mean"):
        return _pct(z * math.sqrt(p / (1 - p) / n)), "rel. error of E[y] (= x)"
    if fam == "variance":
        slack = 2.0**-21
        if abs(q - 0.5) < 1e-12:  # S2 maximal at q = 1/2: second-order statistic (chi2_1 / n)
            d = (stats.chi2.isf(budget.ALPHA, 1) + stats.chi2.ppf(POWER, 1)) / n + slack
            return _pct(d), "rel. error of Var[y] (2nd order at q = 1/2: (chi2_1(1-ALPHA) + chi2_1(0.8))/n)"
        d = z * abs(1 - 2 * q) / math.sqrt(q * (1 - q) * n) + slack
        return _pct(d), "rel. error of Var[y] (delta method)"
    if fam in ("uniformity_mod", "uniformity_block"):
        m = int(probe.label.split("m=")[1]) if fam == "uniformity_mod" else 4
        lam = _ncx2_lambda(m - 1)
        d = math.sqrt(lam * q * (1 - q) / ((n / m) * (1 - 1 / m)))
        return f"{d:.2g}", f"abs. keep-prob. error of one class of {m} (noncentral chi2, df {m - 1})"
    if fam == "lag":
        lag = int(probe.label.split("L=")[1])
        phi = z / math.sqrt(n - lag)
        return f"{phi:.2g} (P(both kept) {phi * q * (1 - q):+.2g})", "correlation of m_i, m_i+L"
    if fam == "lag_cross_block":
        phi = z / math.sqrt(n / 4)
        return f"{phi:.2g}", "correlation across a block boundary"
    if fam == "cross_call":
        d = z * math.sqrt(q * q * (1 - q * q) / n)
        return f"{d:.2g} (corr. {d / (q * (1 - q)):.2g})", "abs. error of P(kept in both) = q^2"
    if fam == "ks_words":
        d = (stats.kstwobign.isf(budget.ALPHA) + 0.5 * stats.norm.ppf(POWER)) / math.sqrt(n)
        return f"{d:.2g}", "sup-distance of the words' CDF from uniform"
    raise ValueError(fam)


def rows():
    probes = list(battery.backend_probes()) + list(battery.slow_probes()) + list(battery.stream_probes())
    for pr in probes:
        bias, what = detectable(pr, pr.n)
        sim = detectable(pr, pr.n_sim)[0] if pr.n_sim else "-"
        yield pr, bias, what, sim


def main():
    z = _z()
    print(f"Smallest bias detected with {POWER:.0%} power by each test at its CI sample size "
          f"(two-sided level ALPHA = {budget.ALPHA:.3g}, z_(1-ALPHA/2) + z_(0.8) = {z:.2f}; normal "
          f"approximations except the keep rates, which are exact binomial; see "
          f"tests/stats/power_table.py). Sizes: reference and cpu; the last "
          f"column is the CUDA simulator run.\n")
    print("| test | p | n | smallest detectable bias | measured as | n (sim) | bias (sim) |")
    print("|---|---|---|---|---|---|---|")
    for pr, bias, what, sim in rows():
        p = f"{pr.p:g}" if pr.p == pr.p else "-"
        print(f"| {pr.label} | {p} | {pr.n} | {bias} | {what} | {pr.n_sim or '-'} | {sim} |")


if __name__ == "__main__":
    main()
