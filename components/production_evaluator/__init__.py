from components.production_evaluator.component import ProductionEvaluator

__all__ = ["ProductionEvaluator"]
