"""Evaluators of decision, causal and unsupervised models; each module registers on import."""
