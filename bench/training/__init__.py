"""The textbook's dropout experiment (d2l section 4.6) on our kernels: a NumPy MLP
784-256-256-10 whose dropout layers call any backend or checker IMPL, the same network in
PyTorch with ``nn.Dropout`` and with our bridge (kernels/torch_bridge.py), trained over
several seeds; ``python -m bench.training`` (``dropout-train``) writes reports/training/.
See docs/TRAINING.md.
"""
