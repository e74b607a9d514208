"""LoRA workbench for the 2024 Ascend AI contest (MindSpore track, topic 2).

Stages (each runnable alone through ``python -m pipeline``):
data -> train -> infer -> evaluate -> dashboard.
"""

__version__ = "0.1.0"
