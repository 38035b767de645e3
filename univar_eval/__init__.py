"""univar-eval: human values of language models inside lm-evaluation-harness; layout in docs/architecture.md."""

# Importing this package stays cheap on purpose: the ``.pth`` startup hook imports it in every
# interpreter, so heavy libraries are imported inside the step modules.

__version__ = "0.3.0.dev0"
