"""The curated base schema; class names are added from the data at run time."""
import os

BASE_SCHEMA = os.path.join(os.path.dirname(__file__), "base_schema.pbtxt")
