"""Smallest effect each probe detects with 99 % power at the sample size it used.

    python -m reference.conformance.stats.power            # markdown table at the default sizes

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

POWER = 0.99


def _pct(x: float) -> str:
    v = 100 * x
    return f"{v:.0f}%" if v >= 10 else f"{v:.2g}%"


def z_shift(alpha: float) -> float:
    """Shift (in standard errors) a two-sided level-alpha z-test detects with POWER."""
    return float(stats.norm.isf(alpha / 2) + stats.norm.ppf(POWER))


def _ncx2_lambda(df: int, alpha: float) -> float:
    crit = stats.chi2.isf(alpha, df)
    return optimize.brentq(lambda lam: stats.ncx2.sf(crit, df, lam) - POWER, 1e-9, 1e5)


def _exact_keep_rate(n: int, r0: float, alpha: float):
    """Relative change of the rarer probability r0 that the exact binomial test (scipy
    binomtest, two-sided, level alpha) detects with POWER: (downwards, upwards).
    Downwards is None when even r = 0 is not detected."""

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


def detectable(probe, n, alpha: float | None = None) -> tuple[str, str]:
    """(effect, what the effect is) for one probe at sample size n (a shape for multidim)."""
    alpha = alpha or default_alpha()
    fam, p = probe.family, probe.p
    q = keep_prob(p) if p == p else float("nan")
    z = z_shift(alpha)
    if fam == "multidim":
        axis = int(probe.label.split("axis=")[1])
        pairs = math.prod(n) // n[axis] * (n[axis] - 1)
        return f"{z / math.sqrt(pairs):.2g}", f"correlation of neighbours along axis {axis}"
    if fam == "noise_keep_rate":  # n = (x shape, noise shape): m mask elements
        down, up = _exact_keep_rate(math.prod(n[1]), min(q, 1 - q), alpha)
        which = "drop prob. p" if q > 0.5 else "keep prob. q"
        down = f"-{_pct(down)}" if down is not None else "none"
        return f"{down} / +{_pct(up)}", f"rel. error of the rarer {which} per mask element (exact binomial)"
    if fam == "half_mean":
        return _pct(z * math.sqrt(p / (1 - p) / n)), "rel. error of E[y] (= P(keep) round16(x scale32))"
    if fam.startswith("keep_rate"):
        down, up = _exact_keep_rate(n, min(q, 1 - q), alpha)
        which = "drop prob. p" if q > 0.5 else "keep prob. q"
        down = f"-{_pct(down)}" if down is not None else "none"
        return f"{down} / +{_pct(up)}", f"rel. error of the rarer {which} (exact binomial)"
    if fam.startswith("mean"):
        return _pct(z * math.sqrt(p / (1 - p) / n)), "rel. error of E[y] (= x)"
    if fam == "variance":
        slack = 2.0**-21
        if abs(q - 0.5) < 1e-12:  # S2 maximal at q = 1/2: second-order statistic (chi2_1 / n)
            d = (stats.chi2.isf(alpha, 1) + stats.chi2.ppf(POWER, 1)) / n + slack
            return _pct(d), "rel. error of Var[y] (2nd order at q = 1/2)"
        d = z * abs(1 - 2 * q) / math.sqrt(q * (1 - q) * n) + slack
        return _pct(d), "rel. error of Var[y] (delta method)"
    if fam in ("uniformity_mod", "uniformity_block"):
        m = int(probe.label.split("m=")[1]) if fam == "uniformity_mod" else 4
        lam = _ncx2_lambda(m - 1, alpha)
        d = math.sqrt(lam * q * (1 - q) / ((n / m) * (1 - 1 / m)))
        return f"{d:.2g}", f"abs. keep-prob. error of one class of {m} (noncentral chi2, df {m - 1})"
    if fam == "byte_sharing":  # ~768 positions near the ~n 2**-16 elements kept at p = 1 - 2**-16
        m = 6 * n * 2.0**-16
        qb = 2.0**-8
        k = stats.binom.isf(alpha, max(int(m), 1), qb) + 1
        return f"{(k / max(m, 1)) / qb:.2g}x", "keep rate at p = 1 - 2**-8 of the neighbours of an element kept " \
            "at p = 1 - 2**-16, relative to 2**-8 (one-sided binomial)"
    if fam == "lag":
        lag = int(probe.label.split("L=")[1])
        phi = z / math.sqrt(n - lag)
        return f"{phi:.2g}", "correlation of m_i, m_i+L"
    if fam == "lag_cross_block":
        return f"{z / math.sqrt(n / 4):.2g}", "correlation across a block boundary"
    if fam == "successive" and probe.label.startswith("successive/shifted"):
        lags = min(budget.MAX_PERIOD, n // 2)
        zz = stats.norm.isf(alpha / (2 * lags)) + stats.norm.ppf(POWER)
        return f"{zz / math.sqrt(n - lags):.2g}", f"correlation of call 2 with call 1 at one shift <= {lags}"
    if fam == "periodicity":
        lags = min(budget.MAX_PERIOD, n // 2)
        zz = stats.norm.isf(alpha / (2 * lags)) + stats.norm.ppf(POWER)
        return f"{zz / math.sqrt(n - lags):.2g}", f"autocorrelation at one lag <= {lags}"
    if fam in ("cross_call", "successive"):
        d = z * math.sqrt(q * q * (1 - q * q) / n)
        return f"{d / (q * (1 - q)):.2g}", "correlation of the two calls' masks"
    if fam == "ks_words":
        d = (stats.kstwobign.isf(alpha) + 0.5 * stats.norm.ppf(POWER)) / math.sqrt(n)
        return f"{d:.2g}", "sup-distance of the words' CDF from uniform"
    raise ValueError(fam)


def default_alpha() -> float:
    """ALPHA of a default contract-level dropout-check run (every backend and stream probe)."""
    probes = list(battery.backend_probes()) + list(battery.stream_probes())
    return budget.FAMILY_ALPHA / len(probes)


def rows(alpha=None):
    for pr in battery.all_probes():
        bias, what = detectable(pr, pr.n, alpha)
        sim = detectable(pr, pr.n_sim, alpha)[0] if pr.n_sim else "-"
        yield pr, bias, what, sim


def _fmt_n(n):
    if isinstance(n, tuple) and n and isinstance(n[0], tuple):  # (x shape, noise shape)
        return " over ".join("x".join(map(str, s)) for s in reversed(n))
    return "x".join(map(str, n)) if isinstance(n, tuple) else n


def main():
    alpha = default_alpha()
    print(f"Smallest effect detected with {POWER:.0%} power by each probe at its default sample size "
          f"(two-sided level ALPHA = {alpha:.3g}, the level of a default contract-level run; normal "
          f"approximations except the keep rates, which are exact binomial; see "
          f"reference/conformance/stats/power.py). The last column is the CUDA simulator size.\n")
    print("| probe | p | n | smallest detectable effect | measured as | n (sim) | effect (sim) |")
    print("|---|---|---|---|---|---|---|")
    for pr, bias, what, sim in rows(alpha):
        p = f"{pr.p:g}" if pr.p == pr.p else "-"
        n = _fmt_n(pr.n)
        ns = _fmt_n(pr.n_sim) if pr.n_sim else "-"
        print(f"| {pr.label} | {p} | {n} | {bias} | {what} | {ns} | {sim} |")


if __name__ == "__main__":
    main()
