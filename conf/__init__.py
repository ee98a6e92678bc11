"""optbench's Hydra configs, installed as the package ``optbench.conf``."""
