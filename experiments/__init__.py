"""Runnable studies over the library: the scaling study, pre-caching, consequence-blindness,
benchmarks and checks; one package per study with more than one file."""
