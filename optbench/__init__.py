"""optbench: a command-line experiment runner for comparing neural-network optimizers."""

__version__ = "0.1.0"
