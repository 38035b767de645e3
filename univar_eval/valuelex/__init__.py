"""ValueLex (Biedma et al., 2024): the LLM value lexicon and the projective sentence-completion test.

``taxonomy`` holds the value system, ``lexicon`` the single-word elicitation, ``projective`` the sentence-completion
scorer, ``analysis`` the profile, ``task`` the lm-eval task class.
"""
