from components.model_selector.component import ModelSelector

__all__ = ["ModelSelector"]
