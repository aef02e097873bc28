from components.atomic_pusher.executor import Executor

__all__ = ["Executor"]
