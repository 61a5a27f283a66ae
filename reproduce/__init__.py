"""Reproducers of the ACDA paper's tables and figures: ``python -m reproduce`` lists them."""
