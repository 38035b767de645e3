"""The lm-eval coupling (``lm_eval_api``), the task base every family builds on, and the UniVaR task.

Where each step lives and the layer order: docs/architecture.md."""
