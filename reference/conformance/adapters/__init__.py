"""Built-in adapters: outside dropout implementations wrapped into the checker's protocol
(reference.conformance.protocol.Implementation). Adapters, not checks, convert array types:
NumPy in, the implementation's own arrays inside, NumPy out.

Each ``make_*`` function builds one Implementation; ``reference.conformance.loader`` lists them by name.
"""
