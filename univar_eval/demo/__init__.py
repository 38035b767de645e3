"""Tiny offline models (random-weight causal LM, NLLB-shaped translator) for tests and the walkthrough.

Where each step lives and the layer order: docs/architecture.md."""
