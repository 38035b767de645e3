"""HVAE (Zhang et al., 2023): social value orientation on the SVO slider measure.

``svo`` scores choices (angle, category, value rationality); ``task`` holds the prompts, the letter
parser and the lm-eval task class. The report (tables, floors) is :mod:`univar_eval.reports.hvae`.
"""
