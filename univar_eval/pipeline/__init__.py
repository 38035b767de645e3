"""From questions to a value distribution: questionnaire, answers, translation to English, encoders
(native NomicBERT included), the embedding/translation cache, and ``embed.build_distribution``."""
