"""Semantic lookups: the vector index, the pair scorer, its calibration and the guards."""
