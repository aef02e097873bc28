"""PushDecision: the production gate's blessing, minus re-pushing the same model.

The production Evaluator blesses a candidate that clears the floor and is not
worse than the model in production by more than the tolerance. TFX has no check
that the candidate *is* the production model (a rerun that reuses cached
training would push a second copy), so this adds one, by content fingerprint.
"""
from tfx.types import standard_artifacts
from tfx.v1.dsl.components import (InputArtifact, OutputArtifact, Parameter,
                                   component)

from components.model_selector.component import FINGERPRINT, is_blessed

DECISION = "decision"  # custom property on the output blessing
PUSH, NOT_BLESSED, SAME_AS_PRODUCTION = "push", "not_blessed", "same_as_production"


def decide(candidate_fp, production_fp, production_blessed, push_equal):
  if not production_blessed:
    return NOT_BLESSED
  if production_fp and candidate_fp == production_fp and not push_equal:
    return SAME_AS_PRODUCTION
  return PUSH


@component
def PushDecision(
    model: InputArtifact[standard_artifacts.Model],
    production_blessing: InputArtifact[standard_artifacts.ModelBlessing],
    blessing: OutputArtifact[standard_artifacts.ModelBlessing],
    production_model: InputArtifact[standard_artifacts.Model] = None,
    push_equal: Parameter[int] = 0):
  decision = decide(
      model.get_string_custom_property(FINGERPRINT),
      production_model.get_string_custom_property(FINGERPRINT)
      if production_model else None,
      is_blessed(production_blessing), bool(push_equal))
  blessing.set_int_custom_property("blessed", int(decision == PUSH))
  # Read by LatestBlessedModelStrategy to find the model now in production.
  blessing.set_int_custom_property("current_model_id", model.id)
  blessing.set_string_custom_property("current_model", model.uri)
  blessing.set_string_custom_property(DECISION, decision)
