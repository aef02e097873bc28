from components.schema_curator.component import CuratedSchemaGen

__all__ = ["CuratedSchemaGen"]
