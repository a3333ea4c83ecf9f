"""The theory users learn dropout from, measured on any implementation (docs/THEORY.md).

Each quantitative claim of the texts is a statement about the distribution a correct dropout
produces, so each is a Monte Carlo check on an implementation's real outputs (fresh seeds from
the run's :class:`~reference.conformance.stats.sampling.Seeds`), with a p-value from a stated
test, the smallest deviation it detects with 99 % power at the sample size used, and a place
in the run's false-alarm budget (FAMILY_ALPHA over the distinct hypotheses, as the battery):

1. ``E[y] = x`` and ``Var[y] = x**2 p / (1 - p)`` (exact binomial tests of the mean and the
   sample variance of y/x).
2. Jensen: ``E[phi(y)] - phi(x) = x**2 p / (1 - p)`` for ``phi(z) = z**2`` and a scalar input;
   non-negative for softplus (exact binomial tests: both statistics are lattices in K).
3. MC dropout: the mean of T passes of a linear unit has variance
   ``(1/T) (p/q) sum_i (w_i x_i)**2`` (sample variance against the exact variance of the
   sample variance, from the cumulants: a z-test); deterministic inference: zero.
4. Dropout as adaptive L2: the expected loss over masks is the plain loss plus
   ``p / (2 n q) sum_ij w_j**2 x_ij**2`` (mean loss against its exact variance: a z-test).
5. Batch-norm shift: classic dropout (impl output times q) before batch normalization leaves a
   test-time offset ``gamma mu (1 - q) / sqrt(q sigma**2 + q (1 - q) mu**2 + eps)``; inverted
   dropout removes it and leaves a variance mismatch (bivariate CLT chi-square of the two
   training moments, exact covariance given x).
6. Paths: ``E[active paths] = N_total q**L`` on masks of L layers drawn in one call (z-test,
   exact variance of a product of independent binomials).
7. Ensembles: ``E_ind - E_ens = (T - 1)/(2T) D`` holds exactly for the half Brier score of the
   vote shares (any number of classes), not for the 0/1 error of a majority vote; the check
   tests the expected disagreement and individual error of T real subnetworks against their
   exact values (enumeration over the 2**d masks), one-sample t-tests.
8. The worked examples (d2l's ``dropout_layer`` on ``arange(16)``, ``nn.Dropout(0.1)`` on
   ``[5, 7, 9]``) reproduced bit for bit: exact, no p-value.

Claims 3 and 4 read the masks of neighbouring inputs together; :data:`PAIRS_SHARE_DECISION`, a
mutant whose neighbouring pairs share one decision (each element's keep rate right), fails
them. ``python -m reference.conformance.theory IMPL [--quick] [--stat-seed S]`` runs them all.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from scipy import stats

from reference.conformance.stats import budget, power
from reference.conformance.stats.mean import mean_pvalue
from reference.conformance.stats.sampling import Seeds, keep_prob, scale, seeds_from_option
from reference.conformance.stats.variance import variance_pvalue

POWER = power.POWER
CONF = 0.99  # confidence bands of the report
EPS_BN = 1e-5
GAMMA_BN = 1.0
X_SCALAR = 1.5  # claim 2's scalar input


# --- small statistics -----------------------------------------------------------------------


z_power = power.z_shift


def z_pvalue(z: float) -> float:
    return float(2 * stats.norm.sf(abs(z))) if math.isfinite(z) else 0.0


def bonferroni(*pvs: float) -> float:
    return float(min(1.0, len(pvs) * min(pvs)))


def lattice_pvalue(t: float, n: int, q: float, a: float, c: float, target: float, slack: float) -> float:
    """Exact two-sided p-value of ``E[T] = target`` when, under the null, ``T = a + c K / n``,
    ``K ~ Binomial(n, q)``, ``c > 0``: ``P(|T' - target| >= |t - target| - slack)``."""
    if not math.isfinite(t):
        return 0.0
    d = abs(t - target) - slack
    if d <= 0:
        return 1.0
    k_hi = math.ceil(n * (target + d - a) / c)
    k_lo = math.floor(n * (target - d - a) / c)
    pv = (stats.binom.cdf(k_lo, n, q) if k_lo >= 0 else 0.0) + (stats.binom.sf(k_hi - 1, n, q) if k_hi <= n else 0.0)
    return float(min(1.0, pv))


def rel(obs: float, exp: float) -> str:
    if exp == 0:
        return f"{obs - exp:+.3g} (abs.)"
    return f"{100 * (obs - exp) / abs(exp):+.3g}%"


def _pct(x: float) -> str:
    return f"{100 * x:.2g}%"


# --- the outcome of one claim check ----------------------------------------------------------


@dataclass
class Outcome:
    p_value: float | None        # None: an exact check (claim 8)
    observed: str
    expected: str
    difference: str
    test: str
    effect: str = ""             # smallest deviation detected with 99 % power
    exact_ok: bool | None = None  # exact sub-checks (None: none)
    measured: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Claim:
    label: str                   # "theory/3_mc_dropout/p=0.5"
    claim: int
    p: float
    sizes: dict = field(compare=False, hash=False)  # {"full": size, "quick": size}
    run: Callable[..., Outcome] = field(compare=False, repr=False)
    statistical: bool = True     # a hypothesis of the budget (claim 8 is exact)
    doc: str = ""

    def size(self, quick: bool):
        return self.sizes["quick" if quick else "full"]


@dataclass
class TheoryResult:
    """The fields of ``runner.Result`` (so report.py and the CLI print it), plus the claim."""

    name: str
    kind: str
    status: str
    passed: bool | None
    p_value: float | None = None
    alpha: float | None = None
    n: str | None = None
    effect: str = ""
    detail: str = ""
    measured: dict = field(default_factory=dict)
    seconds: float = 0.0
    claim: int = 0


# --- helpers: calling the implementation ---------------------------------------------------------


def as_impl(impl):
    from reference.conformance.protocol import as_implementation

    return as_implementation(impl)


def seed_for(impl, seeds: Seeds, label: str) -> tuple[int, int]:
    s, o = seeds(label)
    return s, (o if impl.capabilities.offset else 0)


def forward_values(impl, x: np.ndarray, p: float, seed: int, offset: int) -> np.ndarray:
    y, _ = impl.forward(np.ascontiguousarray(x), p, seed=seed, offset=offset)
    return np.asarray(y)


def _x_signed(n: int, rng_seed: int = 20240604) -> np.ndarray:
    rng = np.random.default_rng(rng_seed)
    return (rng.uniform(0.5, 2.0, n) * np.where(rng.integers(0, 2, n) == 1, 1.0, -1.0)).astype(np.float32)


# --- claim 1: E[y] = x, Var[y] = x^2 p / (1 - p) -------------------------------------------------


def measure_moments(impl, p: float, n: int, seed: int, offset: int) -> dict:
    x = _x_signed(n)
    y = forward_values(impl, x, p, seed, offset)
    r = y.astype(np.float64) / x.astype(np.float64)
    m, v = float(r.mean()), float(r.var(ddof=1))
    q = 1 - p
    se_m = math.sqrt(p / q / n)
    se_v = math.sqrt(max((p / q) * (1 - 6 * p * q) / (q * q) + 2 * (p / q) ** 2, 0.0) / n)  # kappa4/n + 2 kappa2^2/n
    return {"mean": m, "var": v, "se_mean": se_m, "se_var": se_v, "formula_mean": 1.0, "formula_var": p / q,
            "pv_mean": mean_pvalue(r, p), "pv_var": variance_pvalue(r, p), "bias_x_units": float((y - x).mean())}


def _claim1(p):
    def run(impl, n, seeds, alpha):
        s, o = seed_for(impl, seeds, f"theory/1/p={p:g}")
        m = measure_moments(impl, p, n, s, o)
        q = 1 - p
        z = z_power(alpha / 2)
        eff_m = z * math.sqrt(p / q / n)
        eff_v = z * abs(1 - 2 * q) / math.sqrt(q * p * n) if abs(q - 0.5) > 1e-9 else \
            (stats.chi2.isf(alpha / 2, 1) + stats.chi2.ppf(POWER, 1)) / n
        return Outcome(
            bonferroni(m["pv_mean"], m["pv_var"]),
            f"mean(y/x) = {m['mean']:.6g}, var(y/x) = {m['var']:.6g}; mean(y - x) = {m['bias_x_units']:+.3g} (x units)",
            f"E[y/x] = 1, Var[y/x] = p/(1-p) = {p / q:.6g}",
            f"mean {rel(m['mean'], 1.0)}, variance {rel(m['var'], p / q)}",
            "exact binomial tests of mean and sample variance of y/x (r = s Bernoulli(q)), Bonferroni x2",
            f"E[y] +-{_pct(eff_m)}, Var[y] +-{_pct(eff_v)}", measured=m)
    return Claim(f"theory/1_mean_variance/p={p:g}", 1, p, {"full": 2**22, "quick": 2**17}, run,
                 doc="inverted dropout keeps E[y] = x; Var[y] = x^2 p/(1-p)")


# --- claim 2: Jensen ---------------------------------------------------------------------------


def _softplus(z):
    return np.logaddexp(0.0, z)


def measure_jensen(impl, p: float, n: int, seed: int, offset: int, x0: float = X_SCALAR) -> dict:
    y = forward_values(impl, np.full(n, x0, np.float32), p, seed, offset).astype(np.float64)
    q = 1 - p
    sq = float((y * y).mean()) - x0 * x0                      # E[phi(y)] - phi(E[y]) for phi = z^2
    sp_mean = float(_softplus(y).mean())
    sp = sp_mean - float(_softplus(x0))
    f_sq = x0 * x0 * p / q
    f_sp = q * float(_softplus(x0 / q)) + p * math.log(2) - float(_softplus(x0))
    v = float(np.float32(x0) * scale(p))                     # the kept value under the contract
    qq = keep_prob(p)
    pv_sq = lattice_pvalue(sq, n, qq, -x0 * x0, v * v, f_sq, 2.0**-20 * (abs(sq) + x0 * x0 + 1))
    c_sp = float(_softplus(v)) - math.log(2)
    pv_sp = lattice_pvalue(sp_mean, n, qq, math.log(2), c_sp, f_sp + float(_softplus(x0)), 2.0**-20 * (1 + sp_mean))
    se_sq = v * v * math.sqrt(qq * p / n)
    se_sp = c_sp * math.sqrt(qq * p / n)
    return {"bias_sq": sq, "formula_sq": f_sq, "se_sq": se_sq, "gap_softplus": sp, "formula_softplus": f_sp,
            "se_softplus": se_sp, "pv_sq": pv_sq, "pv_softplus": pv_sp,
            "softplus_gap_lower": sp - stats.norm.isf((1 - CONF) / 2) * se_sp}


def _claim2(p):
    def run(impl, n, seeds, alpha):
        s, o = seed_for(impl, seeds, f"theory/2/p={p:g}")
        m = measure_jensen(impl, p, n, s, o)
        z = z_power(alpha / 2)
        return Outcome(
            bonferroni(m["pv_sq"], m["pv_softplus"]),
            f"z^2 bias {m['bias_sq']:.6g}; softplus gap {m['gap_softplus']:.6g} "
            f"({CONF:.0%} lower bound {m['softplus_gap_lower']:.3g})",
            f"x^2 p/(1-p) = {m['formula_sq']:.6g}; q sp(x/q) + p log 2 - sp(x) = {m['formula_softplus']:.6g} >= 0",
            f"z^2 {rel(m['bias_sq'], m['formula_sq'])}, softplus {rel(m['gap_softplus'], m['formula_softplus'])}",
            f"exact binomial tests (both statistics are a + c K/n), scalar x = {X_SCALAR}, Bonferroni x2",
            f"z^2 bias +-{_pct(z * m['se_sq'] / m['formula_sq'])}, softplus gap "
            f"+-{_pct(z * m['se_softplus'] / m['formula_softplus'])}", measured=m)
    return Claim(f"theory/2_jensen/p={p:g}", 2, p, {"full": 2**22, "quick": 2**17}, run,
                 doc="E[phi(y)] - phi(x): x^2 p/(1-p) for z^2, >= 0 for softplus")


# --- claim 3: MC dropout ---------------------------------------------------------------------------


def mc_unit(d: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3003)
    return rng.uniform(0.5, 2.0, d).astype(np.float32), rng.uniform(0.25, 1.0, d)


def measure_mc(impl, p: float, d: int, T: int, R: int, seed: int, offset: int) -> dict:
    """R independent MC estimates, each the mean of T passes (rows of one call) of a = w . y."""
    x, w = mc_unit(d)
    y = forward_values(impl, np.broadcast_to(x, (R * T, d)), p, seed, offset).astype(np.float64)
    a = (y @ w).reshape(R, T).mean(axis=1)
    q = 1 - p
    c = w * x.astype(np.float64)
    k2 = (p / q) * float((c * c).sum()) / T
    k4 = float(((c / q) ** 4).sum()) * q * p * (1 - 6 * q * p) / T**3
    s2 = float(a.var(ddof=1))
    se = math.sqrt(max(k4 / R + 2 * k2 * k2 / (R - 1), 0.0))
    return {"var": s2, "formula": k2, "se": se, "pv": z_pvalue((s2 - k2) / se), "mean": float(a.mean()),
            "mean_formula": float(c.sum())}


def measure_mc_eval(impl, d: int) -> bool | None:
    """Deterministic inference (training=False): y == x, so every pass gives w . x (variance 0)."""
    if not impl.capabilities.training:
        return None
    x, _ = mc_unit(d)
    xs = np.broadcast_to(x, (4, d)).copy()
    y, _ = impl.forward(xs, 0.5, seed=1, training=False)
    return bool(np.array_equal(np.asarray(y), xs))


def _claim3(p):
    def run(impl, size, seeds, alpha):
        d, T, R = size
        s, o = seed_for(impl, seeds, f"theory/3/p={p:g}")
        m = measure_mc(impl, p, d, T, R, s, o)
        ev = measure_mc_eval(impl, d)
        m["eval_zero_variance"] = ev
        return Outcome(
            m["pv"], f"Var[mean of {T} passes] = {m['var']:.6g}"
            + ("" if ev is None else f"; eval mode {'deterministic' if ev else 'NOT deterministic'}"),
            f"(1/T)(p/q) sum (w x)^2 = {m['formula']:.6g}; eval mode: variance 0",
            rel(m["var"], m["formula"]),
            f"z-test of the sample variance of {R} estimates (exact kappa2, kappa4; CLT over the estimates)",
            f"Var +-{_pct(z_power(alpha) * m['se'] / m['formula'])}", exact_ok=ev, measured=m)
    return Claim(f"theory/3_mc_dropout/p={p:g}", 3, p, {"full": (32, 8, 2**16), "quick": (32, 8, 2**11)}, run,
                 doc="MC dropout: Var of the mean of T passes = (1/T)(p/q) sum (w_i x_i)^2; eval mode 0")


# --- claim 4: dropout as adaptive L2 -------------------------------------------------------------


def regression(n: int, d: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Inputs with a positive mean (features after a ReLU, pixel intensities): neighbouring
    inputs' products w_j x_ij w_k x_ik do not average out."""
    rng = np.random.default_rng(4004)
    X = rng.normal(1.0, 0.5, (n, d)).astype(np.float32)
    w = rng.uniform(0.2, 1.0, d)
    y = X.astype(np.float64) @ w + rng.normal(0, 0.5, n)
    return X, w, y


def measure_l2(impl, p: float, n: int, d: int, R: int, seed: int, offset: int) -> dict:
    X, w, yv = regression(n, d)
    Xt = forward_values(impl, np.broadcast_to(X, (R, n, d)), p, seed, offset).astype(np.float64)
    L = 0.5 * ((yv - Xt @ w) ** 2).mean(axis=1)              # (R,) loss of each mask draw
    X64 = X.astype(np.float64)
    r = yv - X64 @ w
    plain = 0.5 * float((r * r).mean())
    q = 1 - p
    a = X64 * w
    pen = p / (2 * n * q) * float((a * a).sum())
    # exact Var of L: rows independent; Z_i = sum_j a_ij (B/q - 1)
    kb2, kb3, kb4 = q * p, q * p * (1 - 2 * q), q * p * (1 - 6 * q * p)
    k2 = (a**2).sum(1) * kb2 / q**2
    k3 = (a**3).sum(1) * kb3 / q**3
    k4 = (a**4).sum(1) * kb4 / q**4
    e2 = r * r + k2
    e4 = r**4 + 6 * r * r * k2 - 4 * r * k3 + k4 + 3 * k2 * k2
    var_L = float((e4 - e2 * e2).sum()) / (2 * n) ** 2
    se = math.sqrt(var_L / R)
    obs = float(L.mean())
    return {"loss": obs, "plain": plain, "penalty": obs - plain, "formula_penalty": pen, "se": se,
            "pv": z_pvalue((obs - plain - pen) / se)}


def _claim4(p):
    def run(impl, size, seeds, alpha):
        n, d, R = size
        s, o = seed_for(impl, seeds, f"theory/4/p={p:g}")
        m = measure_l2(impl, p, n, d, R, s, o)
        return Outcome(
            m["pv"], f"E_mask[loss] - plain loss = {m['penalty']:.6g} (loss units; plain {m['plain']:.6g})",
            f"p/(2n(1-p)) sum w_j^2 x_ij^2 = {m['formula_penalty']:.6g}",
            f"penalty {rel(m['penalty'], m['formula_penalty'])}",
            f"z-test of the mean loss over {R} mask draws (exact variance from the cumulants; CLT over {n}x{R} rows)",
            f"penalty +-{_pct(z_power(alpha) * m['se'] / m['formula_penalty'])}", measured=m)
    return Claim(f"theory/4_adaptive_l2/p={p:g}", 4, p, {"full": (256, 16, 1024), "quick": (256, 16, 128)}, run,
                 doc="E_mask[loss] = loss + p/(2n(1-p)) sum_ij w_j^2 x_ij^2")


# --- claim 5: batch-norm shift ------------------------------------------------------------------


BN_MU, BN_SIGMA = 1.0, 0.5


def bn_formula(mu: float, sig2: float, q: float, eps: float = EPS_BN, gamma: float = GAMMA_BN) -> dict:
    v_cl = q * sig2 + q * (1 - q) * mu * mu
    v_inv = sig2 / q + mu * mu * (1 - q) / q
    return {"offset_classic": gamma * mu * (1 - q) / math.sqrt(v_cl + eps), "offset_inverted": 0.0,
            "var_ratio_inverted": sig2 / (v_inv + eps), "var_ratio_classic": sig2 / (v_cl + eps)}


def measure_bn(impl, p: float, n: int, seed: int, offset: int) -> dict:
    rng = np.random.default_rng(5005)
    x = rng.normal(BN_MU, BN_SIGMA, n).astype(np.float32)
    y = forward_values(impl, x, p, seed, offset).astype(np.float64)
    x64 = x.astype(np.float64)
    q = 1 - p
    c = y * q                                                  # classic dropout: x m
    m1, m2 = float(c.mean()), float((c * c).mean())
    xbar, sx2 = float(x64.mean()), float(x64.var())
    v_cl = m2 - m1 * m1
    off = GAMMA_BN * (xbar - m1) / math.sqrt(v_cl + EPS_BN)
    ym, yv = float(y.mean()), float(y.var())
    f = bn_formula(xbar, sx2, q)
    # bivariate CLT of (sum c, sum c^2) given x: exact mean and covariance
    e = np.array([q * x64.sum(), q * (x64**2).sum()])
    cov = q * p * np.array([[(x64**2).sum(), (x64**3).sum()], [(x64**3).sum(), (x64**4).sum()]])
    dv = np.array([c.sum(), (c * c).sum()]) - e
    chi2 = float(dv @ np.linalg.solve(cov, dv))
    # delta method: sd of the offset estimate
    g = np.array([-1 / math.sqrt(v_cl + EPS_BN) + (xbar - m1) * m1 / (v_cl + EPS_BN) ** 1.5,
                  -(xbar - m1) / (2 * (v_cl + EPS_BN) ** 1.5)]) / n
    se = math.sqrt(float(g @ cov @ g))
    return {"offset_classic": off, "formula_classic": f["offset_classic"], "se": se,
            "offset_inverted": GAMMA_BN * (xbar - ym) / math.sqrt(yv + EPS_BN),
            "var_ratio_inverted": sx2 / (yv + EPS_BN), "formula_var_ratio": f["var_ratio_inverted"],
            "population_formula": bn_formula(BN_MU, BN_SIGMA**2, q)["offset_classic"],
            "pv": float(stats.chi2.sf(chi2, 2)) if math.isfinite(chi2) else 0.0}


def _claim5(p):
    def run(impl, n, seeds, alpha):
        s, o = seed_for(impl, seeds, f"theory/5/p={p:g}")
        m = measure_bn(impl, p, n, s, o)
        return Outcome(
            m["pv"], f"classic: offset {m['offset_classic']:.6g} gamma; inverted: offset "
            f"{m['offset_inverted']:+.3g} gamma, test/train variance ratio {m['var_ratio_inverted']:.6g}",
            f"gamma mu (1-q)/sqrt(q s^2 + q(1-q) mu^2 + eps) = {m['formula_classic']:.6g} (x's sample moments); "
            f"inverted: 0 and s^2/(s^2/q + mu^2 p/q + eps) = {m['formula_var_ratio']:.6g}",
            f"offset {rel(m['offset_classic'], m['formula_classic'])}, inverted variance ratio "
            f"{rel(m['var_ratio_inverted'], m['formula_var_ratio'])}",
            "chi-square (df 2) of the training moments (sum x m, sum (x m)^2) given x: bivariate CLT, exact covariance",
            f"offset +-{_pct(z_power(alpha) * m['se'] / m['formula_classic'])} (delta method)", measured=m)
    return Claim(f"theory/5_batchnorm_shift/p={p:g}", 5, p, {"full": 2**22, "quick": 2**17}, run,
                 doc="classic dropout before BN: test-time offset; inverted: variance mismatch only")


# --- claim 6: active paths ---------------------------------------------------------------------


def measure_paths(impl, p: float, L: int, H: int, R: int, seed: int, offset: int) -> dict:
    y = forward_values(impl, np.ones((R, L, H), np.float32), p, seed, offset)
    K = np.count_nonzero(y, axis=2).astype(np.float64)        # kept units per layer
    P = K.prod(axis=1)
    q = 1 - p
    mean_f = float(H**L * q**L)
    var_f = (H * q * p + H * H * q * q) ** L - (H * q) ** (2 * L)
    se = math.sqrt(var_f / R)
    obs = float(P.mean())
    return {"paths": obs, "formula": mean_f, "se": se, "n_total": H**L, "active_fraction": obs / H**L,
            "pv": z_pvalue((obs - mean_f) / se) if se > 0 else (1.0 if obs == mean_f else 0.0)}


def _claim6(p):
    def run(impl, size, seeds, alpha):
        L, H, R = size
        s, o = seed_for(impl, seeds, f"theory/6/p={p:g}")
        m = measure_paths(impl, p, L, H, R, s, o)
        return Outcome(
            m["pv"], f"mean active paths {m['paths']:.6g} of {m['n_total']} (fraction {m['active_fraction']:.6g})",
            f"N_total q^L = {m['formula']:.6g} (q^L = {(1 - p) ** L:.6g})",
            rel(m["paths"], m["formula"]),
            f"z-test of the mean over {R} networks (exact variance of a product of {L} binomials; CLT)",
            f"E[paths] +-{_pct(z_power(alpha) * m['se'] / m['formula'])}", measured=m)
    return Claim(f"theory/6_paths/p={p:g}", 6, p, {"full": (3, 16, 2**16), "quick": (3, 16, 2**12)}, run,
                 doc="expected active paths through L hidden layers = N_total q^L")


# --- claim 7: ensembles -------------------------------------------------------------------------


@dataclass(frozen=True)
class EnsembleTask:
    X: np.ndarray       # (N, d) inputs (dropout on them)
    W: np.ndarray       # (C, d) a fixed linear classifier
    labels: np.ndarray  # (N,)
    preds: np.ndarray   # (N, 2**d) prediction of every mask
    masks: np.ndarray   # (2**d, d)


def ensemble_task(d: int = 8, N: int = 48, C: int = 3) -> EnsembleTask:
    rng = np.random.default_rng(7007)
    W = rng.normal(size=(C, d))
    X = (rng.uniform(0.5, 2.0, (N, d)) * rng.choice([-1.0, 1.0], (N, d))).astype(np.float32)
    labels = np.argmax(X.astype(np.float64) @ W.T, axis=1)
    flip = rng.random(N) < 0.25
    labels[flip] = (labels[flip] + rng.integers(1, C, flip.sum())) % C
    masks = ((np.arange(2**d)[:, None] >> np.arange(d)) & 1).astype(np.float64)
    logits = (X.astype(np.float64)[:, None, :] * masks[None]) @ W.T
    return EnsembleTask(X, W, labels, np.argmax(logits, axis=2), masks)


def ensemble_exact(task: EnsembleTask, q: float) -> dict:
    d = task.X.shape[1]
    k = task.masks.sum(1)
    wm = q**k * (1 - q) ** (d - k)
    C = task.W.shape[0]
    pi = np.stack([((task.preds == c) * wm).sum(1) for c in range(C)], axis=1)
    ED = 1 - (pi**2).sum(1)
    Eind = 1 - pi[np.arange(len(task.labels)), task.labels]
    return {"pi": pi, "D": float(ED.mean()), "E_ind": float(Eind.mean())}


def ensemble_votes(impl, task: EnsembleTask, p: float, T: int, R: int, seed: int, offset: int) -> np.ndarray:
    """Predictions (R, T, N) of R ensembles of T dropout subnetworks, masks from one call."""
    N, d = task.X.shape
    y = forward_values(impl, np.broadcast_to(task.X, (R, T, N, d)), p, seed, offset)
    idx = ((y != 0).astype(np.int64) << np.arange(d)).sum(-1)
    return task.preds[np.arange(N), idx]


def ensemble_stats(task: EnsembleTask, pred: np.ndarray) -> dict:
    """Per ensemble (R,): E_ind (mean 0/1 error of the members), E_ens (half Brier score of the
    vote shares), D (pairwise disagreement rate), E_mv (0/1 error of the plurality vote, ties to
    the lowest class), averaged over the N examples."""
    R, T, N = pred.shape
    C = task.W.shape[0]
    cnt = np.stack([(pred == c).sum(1) for c in range(C)], axis=-1).astype(np.float64)  # (R, N, C)
    v = cnt / T
    onehot = np.eye(C)[task.labels]
    E_ind = (pred != task.labels).mean(1)
    E_ens = 0.5 * ((v - onehot) ** 2).sum(-1)
    D = (T * T - (cnt**2).sum(-1)) / (T * (T - 1))
    E_mv = (np.argmax(cnt, axis=-1) != task.labels).astype(np.float64)
    ident = E_ind - E_ens - (T - 1) / (2 * T) * D
    return {"E_ind": E_ind.mean(1), "E_ens": E_ens.mean(1), "D": D.mean(1), "E_mv": E_mv.mean(1),
            "identity_max_err": float(np.abs(ident).max())}


def measure_ensemble(impl, p: float, T: int, R: int, seed: int, offset: int) -> dict:
    task = ensemble_task()
    st = ensemble_stats(task, ensemble_votes(impl, task, p, T, R, seed, offset))
    ex = ensemble_exact(task, 1 - p)
    gap, gap_mv = st["E_ind"] - st["E_ens"], st["E_ind"] - st["E_mv"]
    tD = stats.ttest_1samp(st["D"], ex["D"])
    tE = stats.ttest_1samp(st["E_ind"], ex["E_ind"])
    f = (T - 1) / (2 * T)
    return {"D": float(st["D"].mean()), "D_exact": ex["D"], "se_D": float(st["D"].std(ddof=1) / math.sqrt(R)),
            "E_ind": float(st["E_ind"].mean()), "E_ind_exact": ex["E_ind"],
            "gap": float(gap.mean()), "se_gap": float(gap.std(ddof=1) / math.sqrt(R)),
            "gap_formula": f * ex["D"], "gap_mv": float(gap_mv.mean()),
            "se_gap_mv": float(gap_mv.std(ddof=1) / math.sqrt(R)),
            "identity_max_err": st["identity_max_err"],
            "pv_D": float(tD.pvalue), "pv_E": float(tE.pvalue)}


def _claim7(p):
    def run(impl, size, seeds, alpha):
        T, R = size
        s, o = seed_for(impl, seeds, f"theory/7/p={p:g}")
        m = measure_ensemble(impl, p, T, R, s, o)
        ok = m["identity_max_err"] < 1e-9
        z = z_power(alpha / 2)
        return Outcome(
            bonferroni(m["pv_D"], m["pv_E"]),
            f"T = {T}: D = {m['D']:.5g}, E_ind = {m['E_ind']:.5g}, E_ind - E_ens(Brier of votes) = {m['gap']:.5g}; "
            f"majority vote: E_ind - E_mv = {m['gap_mv']:.5g}",
            f"E[D] = {m['D_exact']:.5g}, E[E_ind] = {m['E_ind_exact']:.5g} (exact, 2^8 masks); "
            f"(T-1)/(2T) E[D] = {m['gap_formula']:.5g}",
            f"D {rel(m['D'], m['D_exact'])}, E_ind {rel(m['E_ind'], m['E_ind_exact'])}; quoted form with majority "
            f"vote off by {rel(m['gap_mv'], m['gap_formula'])}",
            f"one-sample t-tests over {R} ensembles (Bonferroni x2); the Brier identity checked per realization "
            f"(max error {m['identity_max_err']:.1e})",
            f"D +-{_pct(z * m['se_D'] / m['D_exact'])}", exact_ok=ok, measured=m)
    return Claim(f"theory/7_ensembles/p={p:g}", 7, p, {"full": (5, 2**12), "quick": (5, 2**9)}, run,
                 doc="E_ind - E_ens = (T-1)/(2T) D for the half Brier score of vote shares; not for majority vote")


# --- claim 8: the worked examples ------------------------------------------------------------------


def textbook_example(impl, seeds: Seeds) -> tuple[bool, str]:
    x = np.arange(16, dtype=np.float32).reshape(2, 8)
    s, o = seed_for(impl, seeds, "theory/8/textbook")
    y0 = forward_values(impl, x, 0.0, s, o)
    y1 = forward_values(impl, x, 1.0, s, o)
    yh = forward_values(impl, x, 0.5, s, o)
    ok0 = np.array_equal(y0, x) and y0.dtype == np.float32
    ok1 = not np.any(y1) and y1.dtype == np.float32
    twice = (x * np.float32(2)).view(np.uint32)
    okh = bool(np.all((yh.view(np.uint32) == twice) | (yh == 0)))
    bad = [f"p={k}" for k, ok in (("0 (y == x)", ok0), ("1 (y == 0)", ok1), ("0.5 (y in {0, 2x})", okh)) if not ok]
    kept = [int(v) for v in yh.ravel() if v != 0]
    return not bad, (f"arange(16) at p=0.5 kept: {kept}" if not bad else
                     f"differs at {', '.join(bad)}: p=0 -> {y0.ravel()[:8]}, p=0.5 -> {yh.ravel()[:8]}")


def nn_dropout_example(impl, seeds: Seeds, tries: int = 64) -> tuple[bool, str]:
    x = np.array([5, 7, 9], np.float32)
    expect = x * np.float32(1 / 0.9)  # float32 product with the float32 scale, one rounding
    seen = np.zeros(3, bool)
    for j in range(tries):
        s, o = seed_for(impl, seeds, f"theory/8/nn_dropout/{j}")
        y = forward_values(impl, x, 0.1, s, o)
        good = (y.view(np.uint32) == expect.view(np.uint32)) | (y == 0)
        if y.dtype != np.float32 or not good.all():
            return False, (f"y = {y!r}, expected 0 or {', '.join(f'{v:.4f}' for v in expect)} bit for bit "
                           f"(bits {[hex(b) for b in expect.view(np.uint32)]}); got bits "
                           f"{[hex(int(b)) for b in y.astype(np.float32).view(np.uint32)]}")
        seen |= y != 0
        if seen.all():
            break
    shown = ", ".join(f"{v:.4f}" for v in expect)
    return bool(seen.all()), (f"kept values {shown} bit for bit (scale float32(1/0.9) = {np.float32(1 / 0.9)!r})"
                              if seen.all() else f"some element never kept in {tries} seeds")


def _claim8(which):
    fn = textbook_example if which == "textbook" else nn_dropout_example

    def run(impl, size, seeds, alpha):
        ok, msg = fn(impl, seeds)
        return Outcome(None, msg, "exact values", "" if ok else "not bit for bit", "exact comparison", exact_ok=ok)
    name = "d2l_dropout_layer_arange16" if which == "textbook" else "nn_dropout_0.1_on_5_7_9"
    return Claim(f"theory/8_examples/{name}", 8, 0.5 if which == "textbook" else 0.1, {"full": 1, "quick": 1}, run,
                 statistical=False, doc="the texts' worked examples reproduced bit for bit")


# --- the plan ---------------------------------------------------------------------------------------

CLAIM_P = {1: (0.1, 0.5, 0.9), 2: (0.1, 0.5, 0.9), 3: (0.2, 0.5), 4: (0.2, 0.5), 5: (0.2, 0.5), 6: (0.2, 0.5),
           7: (0.2, 0.5)}
_MAKERS: dict[int, Callable[[float], Claim]] = {1: _claim1, 2: _claim2, 3: _claim3, 4: _claim4, 5: _claim5,
                                                6: _claim6, 7: _claim7}


def claims() -> list[Claim]:
    out = [_MAKERS[k](p) for k, ps in CLAIM_P.items() for p in ps]
    return out + [_claim8("textbook"), _claim8("nn_dropout")]


def _n_str(size) -> str:
    return "x".join(map(str, size)) if isinstance(size, tuple) else str(size)


def hypothesis_keys(impl, quick: bool = False, names=None) -> list[tuple]:
    """The budget keys of the theory checks (budget.hypothesis_key's form): add them to the
    run's keys before ``budget.alpha_for``."""
    import fnmatch

    impl = as_impl(impl)
    who: Any = "contract-stream" if impl.claims_contract else impl
    return [(c.label, repr(c.size(quick)), who) for c in claims() if c.statistical
            and (not names or any(fnmatch.fnmatchcase(c.label, pat) for pat in names))]


def hypothesis_count(impl, quick: bool = False, names=None) -> int:
    return len(set(hypothesis_keys(impl, quick, names)))


def execute(claim: Claim, impl, seeds: Seeds, quick: bool, alpha: float) -> TheoryResult:
    from reference.conformance.protocol import Unsupported

    t0 = time.perf_counter()
    size = claim.size(quick)
    res = TheoryResult(claim.label, "statistical" if claim.statistical else "semantic", "pass", True,
                       n=_n_str(size), claim=claim.claim)
    try:
        out = claim.run(impl, size, seeds, alpha)
        passed = True
        if out.p_value is not None:
            res.p_value, res.alpha = out.p_value, alpha
            passed = out.p_value >= alpha
        if out.exact_ok is False:
            passed = False
        res.passed, res.status, res.effect = passed, ("pass" if passed else "fail"), out.effect
        res.detail = (f"observed {out.observed}; expected {out.expected}; difference {out.difference}; "
                      f"test: {out.test}")
        res.measured = {k: v for k, v in out.measured.items() if isinstance(v, (int, float, bool, type(None)))}
        res.measured.update(observed=out.observed, expected=out.expected, difference=out.difference, test=out.test)
    except Unsupported as e:
        res.status, res.passed, res.detail = "not supported", None, str(e)
    except Exception as e:  # the implementation raised where it should have answered
        res.status, res.passed, res.detail = "error", False, f"{type(e).__name__}: {e}"
    res.seconds = time.perf_counter() - t0
    return res


@dataclass
class TheoryRun:
    impl: Any
    seeds: Seeds
    quick: bool
    alpha: float
    hypotheses: int
    results: list
    seconds: float = 0.0

    @property
    def verdict(self) -> str:
        return "fail" if any(r.passed is False for r in self.results) else "pass"

    def to_json(self) -> dict:
        return {"impl": self.impl.name, "verdict": self.verdict, "mode": "quick" if self.quick else "full",
                "master_seed": self.seeds.master, "seed_mode": self.seeds.mode, "family_alpha": budget.FAMILY_ALPHA,
                "alpha": self.alpha, "hypotheses": self.hypotheses, "seconds": round(self.seconds, 2),
                "checks": [asdict(r) for r in self.results]}


def run(impl, seeds: Seeds | str | int = "fixed", quick: bool = False, alpha: float | None = None, names=None,
        extra_keys=(), progress: Callable | None = None) -> TheoryRun:
    """Run every theory claim on ``impl``. ``alpha`` None: FAMILY_ALPHA over the distinct
    hypotheses of the theory checks plus ``extra_keys`` (the battery's keys of the same run)."""
    import fnmatch

    impl = as_impl(impl)
    if not isinstance(seeds, Seeds):
        seeds = seeds_from_option(seeds)
    t0 = time.perf_counter()
    keys = hypothesis_keys(impl, quick, names)
    if alpha is None:
        alpha = budget.alpha_for(list(keys) + list(extra_keys))
    todo = [c for c in claims() if not names or any(fnmatch.fnmatchcase(c.label, pat) for pat in names)]
    results = []
    for c in todo:
        if progress:
            progress(c)
        results.append(execute(c, impl, seeds, quick, alpha))
    return TheoryRun(impl, seeds, quick, alpha, len(set(keys) | set(extra_keys)), results, time.perf_counter() - t0)


def summary_lines(tr: TheoryRun) -> list[str]:
    failed = [r for r in tr.results if r.passed is False]
    out = [f"{tr.impl.name}: theory {tr.verdict.upper()} ({len(tr.results)} claims checked, {len(failed)} failed; "
           f"ALPHA = {tr.alpha:.3g} over {tr.hypotheses} hypotheses; master seed {tr.seeds.master} ({tr.seeds.mode}); "
           f"{tr.seconds:.1f} s)"]
    for r in failed:
        pv = f" p = {r.p_value:.3g}" if r.p_value is not None else ""
        out.append(f"  FAIL {r.name}:{pv} {r.detail}")
    return out


# --- the mutant that claims 3 and 4 are written for ------------------------------------------------


def _pairs_mutant():
    from reference.conformance import mutants

    return mutants.BY_NAME["pairs_share_decision"]


PAIRS_SHARE_DECISION = _pairs_mutant()
#: The theory checks designed to catch it (tests/test_theory.py asserts it).
PAIRS_CATCHERS = ("theory/3_mc_dropout/p=0.5", "theory/4_adaptive_l2/p=0.5")
