"""optbench's Hydra launcher plugin, where Hydra looks for plugins: ``hydra_plugins.optbench_vectorized_launcher``.

Hydra instantiates only launchers defined under the ``hydra_plugins`` namespace package
and found by scanning it. This folder ships inside the ``optbench`` package, and
``optbench.compat.register_hydra_plugins`` (called by the console script before Hydra
starts) puts ``optbench/_hydra_plugins`` on ``sys.path``, so that the scan finds it in
an editable install as in a wheel. The launcher itself is
:class:`optbench.vectorized.launcher.VectorizedLauncher`; this subclass only gives it
the name Hydra accepts (conf/hydra/launcher/vectorized.yaml).
"""

from optbench.vectorized.launcher import VectorizedLauncher as _VectorizedLauncher


class VectorizedLauncher(_VectorizedLauncher):
    """``hydra/launcher=vectorized`` (see :mod:`optbench.vectorized.launcher`)."""
