"""VertexPusher: the filesystem push plus a Vertex AI endpoint deployment."""
from components.vertex_pusher.component import VertexPusher

__all__ = ["VertexPusher"]
