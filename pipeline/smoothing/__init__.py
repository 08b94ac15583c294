"""Randomized smoothing, the one implementation every attack and defense uses: ``stats`` (the
statistics on vote counts), ``engine`` (``Smooth``: Monte Carlo votes, noise modes, chunking)
and ``certification`` (per-input CERTIFY tables and Table 1's summary)."""
from .engine import ESTIMATE, PREDICT, SELECT, VOTE, Smooth
from .stats import (ABSTAIN, Certificate, binomial_pvalue, certify_from_counts, clopper_pearson_interval,
                    clopper_pearson_lower, predict_from_counts)

__all__ = ["ABSTAIN", "ESTIMATE", "PREDICT", "SELECT", "VOTE", "Certificate", "Smooth", "binomial_pvalue",
           "certify_from_counts", "clopper_pearson_interval", "clopper_pearson_lower", "predict_from_counts"]
