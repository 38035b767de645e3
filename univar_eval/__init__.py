"""univar-eval: measure the human values embedded in language models, inside lm-evaluation-harness.

The package is organised as the flow of an evaluation; each step is one module:

questionnaire -> lm_task -> answers -> translate -> encoders -> distribution
-> distance / svo / valuelex -> bank / compare -> report, leaderboard, plot, gate.

Importing this package is cheap on purpose: the ``.pth`` startup hook imports it
in every interpreter, so heavy libraries are imported inside the step modules.
"""

__version__ = "0.1.0"
