"""Built-in adapters: outside dropout implementations wrapped into the checker's protocol
(reference.conformance.impl.Implementation). Adapters, not checks, convert array types:
NumPy in, the implementation's own arrays inside, NumPy out.

Each ``make_*`` function builds one Implementation; ``kernels.registry`` lists them by name.
"""
