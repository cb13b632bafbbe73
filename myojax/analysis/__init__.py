"""Tools around a trained model: sampling, activation capture, probes, run comparison, export.

Each module does one thing and imports only what it needs; import them directly
(``from myojax.analysis.probes import ...``).
"""
