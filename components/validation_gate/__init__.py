from components.validation_gate.component import ValidationGate

__all__ = ["ValidationGate"]
