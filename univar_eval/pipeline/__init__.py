"""From questions to a value distribution: questionnaire, answers, translation, encoders, cache, embedding.

Where each step lives and the layer order: docs/architecture.md."""
