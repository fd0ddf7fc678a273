"""Explanations: per-prediction feature contributions and global importance.

Tree models (LightGBM, XGBoost) give exact TreeSHAP contributions from the
library itself (``pred_contrib`` / ``pred_contribs``). They are in **margin
space**: for every row, ``bias + sum(contributions) == raw margin`` (the
booster's output before the link: log-odds for binary, log for Poisson/gamma,
the value itself for regression), then the link and the view's scale turn the
margin into the served prediction. Other families get global permutation
importance only.

Example:
    >>> exp = explain_rows(bundle, raw_rows)                     # doctest: +SKIP
    >>> exp.top(0, k=3)                                          # doctest: +SKIP
    [{'feature': 'rev_mean_4w', 'value': 24100.0, 'contribution': 0.21}, ...]
    >>> exp.reason(0)                                            # doctest: +SKIP
    'higher mainly because rev_mean_4w=24100 (+0.21), on_promo=1 (+0.08); lower because ...'
"""

from raycore.explain.contributions import (
    Explanation,
    explain_features,
    explain_rows,
    supports_contributions,
)
from raycore.explain.importance import global_importance

__all__ = [
    "Explanation",
    "explain_features",
    "explain_rows",
    "global_importance",
    "supports_contributions",
]
