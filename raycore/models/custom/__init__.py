"""Project estimators with a scikit-learn interface; each module registers factories on import."""
