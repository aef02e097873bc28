from components.sweep_evaluator.component import SweepEvaluator

__all__ = ["SweepEvaluator"]
