"""univar-eval: measure the human values embedded in language models, inside lm-evaluation-harness.

The folders follow the flow of an evaluation:

=================  ==========================================================================
``harness/``       lm-eval integration: the task base, the UniVaR task, reading lm-eval results
``pipeline/``      questionnaire -> answers -> translation -> encoder -> value distribution
``storage/``       safe files, stored value distributions, reference banks, external sources
``stats/``         distances and their tests, dispersion, encoder identification
``reports/``       compare, gate, leaderboard, plots and the one table renderer
``hvae/``          HVAE: SVO slider scoring, prompts, parsing, task class
``valuelex/``      ValueLex: taxonomy, lexicon, projective scorer, task class
``cli/``           the ``univar-eval`` command, one module per command group
``demo/``          tiny offline models for tests and the walkthrough
=================  ==========================================================================

Importing this package is cheap on purpose: the ``.pth`` startup hook imports it
in every interpreter, so heavy libraries are imported inside the step modules.
"""

__version__ = "0.1.0"
