"""Benchmarks of the hub against plain baselines (`make bench`, see bench/README.md).

Kept free of heavy imports: measurement children import this package first, and whatever it
loaded would count towards both sides' peak memory.
"""
