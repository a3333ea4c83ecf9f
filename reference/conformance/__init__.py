"""The checker: judge any dropout implementation and say what is wrong with it
(docs/CONFORMANCE.md). Everything of it lives in this package:

* :mod:`.protocol`: the implementation protocol (:class:`Implementation`,
  :class:`Capabilities`, wrappers); imports nothing of the project but ``reference.vocab``
  and ``reference.noise``;
* :mod:`.loader`: IMPL strings -> Implementations, from the one registry (reference/registry.py);
* :mod:`.adapters`: other people's dropout (PyTorch, the textbook, Dask arrays, quant8);
* :mod:`.semantic`, :mod:`.contract`: the deterministic checks (their shared array helpers:
  :mod:`.arrays`); :mod:`.stats`: the statistical battery; :mod:`.mutants`: the broken
  implementations each check is shown to catch;
* :mod:`.runner`: plan, budget, execution (:func:`run`, :func:`results_frame`);
  :mod:`.report`: markdown, CSV, plots;
* :mod:`.cli` (``dropout-check``, ``python -m reference.conformance``), :mod:`.plugin`
  (``pytest --dropout-impl``) and its test module :mod:`.test_dropout_impl`.

Nothing in ``kernels`` imports this package.
"""

from .protocol import Capabilities, Implementation, Unsupported, as_implementation, from_api, from_callable

__all__ = ["Capabilities", "Implementation", "Unsupported", "as_implementation", "from_api", "from_callable",
           "run", "plan", "results_frame", "Run", "Result", "checks"]


def __getattr__(name):  # the runner on first use: it imports the whole battery
    if name in ("run", "plan", "results_frame", "Run", "Result", "checks"):
        from . import runner
        return getattr(runner, name)
    raise AttributeError(name)
