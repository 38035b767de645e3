"""Tiny offline models (random-weight causal LM, NLLB-shaped translator) for tests and the walkthrough."""
