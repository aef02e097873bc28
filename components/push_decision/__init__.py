from components.push_decision.component import PushDecision

__all__ = ["PushDecision"]
