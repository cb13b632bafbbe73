"""Differential testing of the analyser against numeric Jacobians, on random JAX programs over a
position axis.

``grammar`` draws programs (a hypothesis strategy) covering every rule family; ``differential``
checks one program against its numeric Jacobian (a missed entry is a ``Counterexample``);
``runner`` checks many and keeps their record; ``python -m proofs.fuzz`` is the command.
"""
