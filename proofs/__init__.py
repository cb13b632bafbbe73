"""Sound position-dependency analysis of JAX programs (README.md in this folder).

``position_dependency(fn, x, *args)`` answers "none", "same-position", "same-or-past" or "any"
for how fn's derivative at position t depends on x at position s; ``python -m proofs.myopia``
proves the model-level myopia property with the same analyser.
"""

from proofs.api import ASSUMPTIONS, Dependency, analyse_dependency, position_dependency
from proofs.interpreter import CannotAnalyse
from proofs.lattice import Position

__all__ = [
    "ASSUMPTIONS",
    "CannotAnalyse",
    "Dependency",
    "Position",
    "analyse_dependency",
    "position_dependency",
]
