"""Verdicts that explain themselves (issue 21, item 6).

A failing check gets, beside its p-value: the observed value, the expected value and the
effect size in the data's units (keep-rate points and % of the rarer outcome, % of E[y],
ulps of a 16-bit kept value, a correlation), and, where the failure matches the signature of
a known bug (the mutants of reference/conformance/mutants.py), the likely cause.
:func:`headlines` then groups the failures of a run by cause: one root cause, one headline.

The signatures (family: what is seen -> the likely cause):

* contract/*: the crafted check names the wrong formula that reproduces the output -> that
  formula (threshold off by one, float32 threshold, float32-division scale, one ulp, 16-bit scale);
* keep_rate: the keep rate is p instead of 1 - p -> compares the word against p;
  = floor((1 - p) 256) / 256 -> an 8-bit threshold; nothing dropped at small p -> a fast path;
* noise_keep_rate: q ** (group size) -> each mask element all() over its group;
* mean, variance: mean of y/x = q, Var = q (1 - q) -> the scale forgotten; mean = q / p -> 1/p;
* half_mean: every kept value one 16-bit ulp from round16(x scale32) and equal to
  round16(x round16(scale)) -> a second rounding in the 16-bit dtype (the scale rounded to
  it first, or x / (1 - p) computed in it: PyTorch CPU, the README's example);
* cross_call/<pair>: the two calls agree -> the seed's high bits ignored or folded, the offset
  ignored, the position in 32 bits, the counter's high word dropped;
* lag L = 1, 2, 3 -> words shared within a Philox block; L = 4 -> blocks repeat;
* multidim axis=0 -> one mask broadcast over the batch;
* byte_sharing -> one random word shared by neighbours (byte rotations or shuffles of it).
"""

from __future__ import annotations

import math
import re

import numpy as np

from reference.stream import scale_for

from .stats import budget
from .stats.sampling import keep_prob


def _pct(x: float) -> str:
    return f"{x:+.3g} %"


def _cause_from_detail(detail: str) -> str:
    m = re.search(r"likely cause: (.*?)(?:;|$)", detail or "")
    return m.group(1).strip() if m else ""


def _keep_rate(label, p, info, n):
    v, q = info["observed"], info["expected"]
    rare = min(q, 1 - q) or 1.0
    rel = ((v if q <= 0.5 else 1 - v) - min(q, 1 - q)) / rare * 100
    effect = (f"{(v - q) * 100:+.4g} keep-rate points ({_pct(rel)} of the "
              f"{'keep' if q <= 0.5 else 'drop'} rate)")
    tol = 6 * math.sqrt(max(q * (1 - q), 1e-12) / max(float(n or 1), 1.0)) + 1e-9
    cause = ""
    if p not in (0.5,) and abs(v - (1 - q)) < tol:
        cause = "compares the word against p, not 1 - p (keep rate p instead of 1 - p)"
    elif abs(v - math.floor((1 - p) * 256) / 256) < tol and abs(v - q) > tol:
        cause = "a keep threshold with 8 bits of resolution: floor((1 - p) 256) / 256"
    elif v == 1.0 and p > 0:
        cause = "nothing dropped: a fast path skips dropout for small p"
    elif label.startswith("noise_keep_rate") and any(abs(v - q ** g) < tol for g in (2, 4, 8)):
        cause = "each mask element = all() of per-element decisions over its group (keep rate q**group)"
    return f"keep rate {v:.8g}", f"{q:.8g}", effect, cause


def _mean(label, p, info, n):
    m = info["observed"]
    effect = f"{_pct((m - 1) * 100)} of E[y]"
    q = keep_prob(p)
    cause = ""
    if abs(m - q) < 1e-2 * max(q, 1e-3):
        cause = "the scale 1/(1-p) forgotten (E[y] = (1 - p) x)"
    elif p > 0 and abs(m - q / p) < 1e-2 * q / p:
        cause = "scales by 1/p instead of 1/(1-p)"
    else:
        s = info.get("scale_seen")
        if s is not None and math.isfinite(s) and abs(s - float(scale_for(p, np.float32))) < 1e-6 * s:
            cause = "the scale is right but the keep rate is not: see the keep_rate checks"
    return f"mean of y/x {m:.8g}", "1", effect, cause


def _variance(label, p, info, n):
    v, e = info["observed"], info["expected"]
    q = keep_prob(p)
    cause = "the scale 1/(1-p) forgotten (Var[y/x] = q (1 - q))" if abs(v - q * (1 - q)) < 1e-2 * q * (1 - q) else ""
    return f"Var[y/x] {v:.6g}", f"{e:.6g}", f"{_pct((v / e - 1) * 100)} of the variance", cause


def _half_mean(label, p, info, n):
    import ml_dtypes  # noqa: F401  (bfloat16 is registered by importing it)

    from reference import vocab

    name = info["dtype"]
    dt = vocab.np_dtype(name)
    m, e, v = info["observed"], info["expected"], info["kept_value"]
    x = np.asarray(budget.HALF_MEAN_X[name], dtype=dt)
    ulp = 2.0 ** (math.floor(math.log2(abs(v))) - (10 if name == "float16" else 7))  # of the kept value
    bias_ulps = (m / keep_prob(p) - v) / ulp
    effect = f"{_pct((m / e - 1) * 100)} of E[y] = {bias_ulps:+.2f} ulp of the kept value {v:g} ({name})"
    seen = info.get("kept_seen") or []
    twice = float((x.astype(np.float32) * np.float32(np.float32(scale_for(p, np.float32)).astype(dt))).astype(dt))
    cause = ""
    if seen and seen[0] == float(x):
        cause = "the scale 1/(1-p) forgotten (kept values equal x)"
    elif len(seen) == 1 and seen[0] == twice and twice != v:
        cause = (f"a second rounding in {name}: the scale rounded to {name} before multiplying, or x / (1 - p) "
                 f"computed in {name} (kept value {twice:g}, not round16(x scale32) = {v:g})")
    elif len(seen) == 1 and seen[0] != v and abs(seen[0] - v) <= 1.5 * ulp:
        cause = (f"the kept value rounded differently ({seen[0]:g}, not round16(x scale32) = {v:g}): "
                 f"computed in {name} (e.g. x / (1 - p)) rather than float32 with one rounding")
    return f"mean of y {m:.7g} (kept values {', '.join(f'{s:g}' for s in seen)})", f"{e:.7g}", effect, cause


_CROSS_CAUSE = {
    "seed+1": "the seed ignored",
    "seed+2**32": "the seed's high 32 bits ignored",
    "seed^2**63": "the seed's top bit ignored",
    "seed^(2**32+1)": "the seed folded to 32 bits (lo ^ hi)",
    "offset+n": "the offset ignored (every call starts at position 0)",
    "offset+2**32": "the stream position held in 32 bits",
    "offset+2**34": "the block counter's high word dropped",
}


def _cross(label, p, info, n):
    a, e = info["observed"], info["expected"]
    pair = label.split("/", 1)[1]
    cause = _CROSS_CAUSE.get(pair, "") if a > e + 0.1 * (1 - e) else ""
    return (f"the two calls agree on {a:.4%} of elements", f"{e:.4%}", f"{(a - e) * 100:+.3g} points of agreement",
            cause)


_SUCCESSIVE_CAUSE = {
    "calls1-2": "successive calls share a mask (a seed or offset fixed in the kernel, or masks reused in pairs)",
    "calls2-3": "successive calls share a mask (masks reused in pairs, or the generator not advanced)",
    "lag2": "the generator's state cycles every 2 calls",
    "lag3": "the generator's state cycles every 3 calls",
}


def _successive(label, p, info, n):
    if label.startswith("successive/shifted"):
        r, s = info["observed"], info.get("shift", 0)
        return (f"correlation {r:+.4g} between call 2 and call 1 shifted by {s} elements", "0",
                f"correlation {r:+.4g}",
                f"the generator advanced by {s} positions per call, not by the n it drew: successive streams "
                "overlap" if r > 0.5 else "")
    a, e = info["observed"], info["expected"]
    cause = _SUCCESSIVE_CAUSE.get(label.split("/", 1)[1], "") if a > e + 0.1 * (1 - e) else ""
    return (f"the two calls agree on {a:.4%} of elements", f"{e:.4%}", f"{(a - e) * 100:+.3g} points of agreement",
            cause)


def _corr(label, p, info, n):
    r = info["observed"]
    cause = ""
    m = re.match(r"lag/p=[^/]+/L=(\d+)", label)
    if m and r > 0:
        lag = int(m.group(1))
        cause = {1: "words shared within a 4-word Philox block, or a decision reused by the next element",
                 2: "words shared within a 4-word Philox block", 3: "words shared within a 4-word Philox block",
                 4: "blocks repeat (a counter off by one)"}.get(lag, "")
    elif label.startswith("multidim/") and label.endswith("axis=0") and r > 0.5:
        cause = "one mask broadcast over the batch axis"
    return f"correlation {r:+.4g}", "0", f"correlation {r:+.4g}", cause


def _bytes(label, p, info, n):
    r = info["observed"]
    return (f"max correlation {r:+.4g} between byte classes of neighbours", "0", f"correlation {r:+.4g}",
            "one random word shared by neighbours (byte rotations or shuffles of it)" if r > 0.05 else "")


_FAMILIES = {"mean_seeds_forward": _mean, "mean_seeds_backward": _mean,
             "keep_rate": _keep_rate, "keep_rate_slow": _keep_rate, "noise_keep_rate": _keep_rate,
             "mean_forward": _mean, "mean_backward_regenerate": _mean, "mean_backward_bits": _mean,
             "variance": _variance, "half_mean": _half_mean, "cross_call": _cross, "successive": _successive,
             "lag": _corr,
             "multidim": _corr, "byte_sharing": _bytes}


def explain(result, p: float | None = None) -> None:
    """Fill ``result.observed``, ``expected``, ``effect_size`` and ``cause`` of a failing result
    (in place; a passing one is left alone)."""
    if result.passed is not False:
        return
    if result.kind != "statistical":
        result.cause = _cause_from_detail(result.detail)
        return
    fam = result.name.split("/")[0]
    f = _FAMILIES.get(fam)
    info = result.measured or {}
    if f is None or "observed" not in info:
        return
    try:
        pp = p if p is not None else float(result.name.split("p=")[1].split("/")[0]) if "p=" in result.name else 0.5
        n = int(np.prod([int(v) for v in re.findall(r"\d+", (result.n or "1").split(" over ")[0])]))
        result.observed, result.expected, result.effect_size, result.cause = f(result.name, pp, info, n)
    except Exception as e:  # an explanation must never turn a verdict into an error
        result.observed = f"(not explained: {type(e).__name__}: {e})"


def headlines(results) -> list[tuple[str, list]]:
    """``[(headline, [failing results])]``: failures with the same likely cause under one headline,
    the others one each; a capability refused is a 'not supported' row already, never here."""
    groups: dict[str, list] = {}
    for r in results:
        if r.passed is False:
            key = r.cause or r.name
            groups.setdefault(key, []).append(r)
    return [(k if rs[0].cause else rs[0].name, rs) for k, rs in groups.items()]
