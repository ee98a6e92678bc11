"""Vectorized sweeps: a sweep's compatible runs trained as one stacked model (``hydra/launcher=vectorized``).

``grouping`` says which runs can share a stacked model (torch-free); ``engine.train_group``
trains one group, each member writing exactly its own run folder; ``stack``,
``optimizers``, ``clipping`` and ``diagnostics`` are the stacked model, optimizer,
gradient clipping and diagnostics columns it uses.
"""
