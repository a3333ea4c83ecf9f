"""Conformance: judge any dropout implementation and say what is wrong with it
(docs/CONFORMANCE.md).

* :mod:`.impl`: the protocol (:class:`Implementation`, :class:`Capabilities`, wrappers);
* :mod:`.semantic`, :mod:`.contract`: the deterministic checks; the statistical battery is
  :mod:`reference.stats`;
* :mod:`.runner`: plan, budget, execution (:func:`run`, :func:`results_frame`);
* :mod:`.report`: markdown, CSV, plots.

This package never imports ``kernels``: the loader of IMPL strings is kernels/registry.py.
"""

from .impl import Capabilities, Implementation, Unsupported, as_implementation, from_api, from_callable  # noqa: F401


def __getattr__(name):  # lazy: the runner imports reference.stats, which imports .impl
    if name in ("run", "plan", "results_frame", "Run", "Result", "checks"):
        from . import runner
        return getattr(runner, name)
    raise AttributeError(name)
