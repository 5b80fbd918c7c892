"""halp-bench: a reproducible benchmark harness for self-supervised skeleton action recognition."""

__version__ = "0.1.0"
