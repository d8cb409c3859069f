"""Experiments that study the suite's parts (pretraining budgets, reward quality) rather than run its suites.

A stage above ``analysis``, beside ``suites``: an experiment trains models and labels episodes with the
lower stages, and reads its results with ``analysis``.
"""
