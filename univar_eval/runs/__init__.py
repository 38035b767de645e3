"""Reading what runs left on disk (lm-eval files, run folders, answer files), verified and counted.

Where each step lives and the layer order: docs/architecture.md."""
