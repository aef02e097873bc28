"""Helpers shared by the tests beside each component and by tests/: tiny
generated datasets, hostile inputs, artifacts and fakes at client boundaries.
Test code only; nothing under pipeline/, components/, gate/ or trainer/
imports it."""
