"""The NumPy reference of inverted dropout and the random-stream contract it follows."""

from .dropout import dropout_backward, dropout_forward, keep_mask, stream_words  # noqa: F401
