"""What "cheaper" means: the serving costs measured of every candidate, their
units, and the budgets a run may set. Imports nothing, so the CLI can list
the choices without loading statistics or TensorFlow.

FLOPs are counted from the served model's graph and do not depend on the
machine that measures them, hence the default; latency is the median time of
a batch-1 call through the exported signature on the Trainer's machine.
"""
# name -> (the measured field in cost.json, unit, scale from the field)
COSTS = {
    "flops": ("flops_per_image", "GFLOPs per image", 1e-9),
    "latency": ("latency_ms_batch1", "ms per image at batch 1", 1.0),
}
DEFAULT = "flops"
# --max-gflops / --max-latency-ms: the cost each bounds, in that cost's unit
# (COSTS: GFLOPs per image, ms per image at batch 1)
BUDGETS = {"max_gflops": "flops", "max_latency_ms": "latency"}


def value(cost_record, cost):
  """The raw measured value of `cost` in a candidate's cost record."""
  return float(cost_record[COSTS[cost][0]])


def text(cost_record, cost):
  """'1.23 GFLOPs per image'."""
  field, unit, scale = COSTS[cost]
  return f"{float(cost_record[field]) * scale:.3g} {unit}"


def over_budget(cost_record, budgets):
  """Why a candidate breaks a budget ('' when within all): budgets maps
  max_gflops / max_latency_ms to a limit or None."""
  problems = []
  for budget, limit in sorted(budgets.items()):
    if limit is None:
      continue
    cost = BUDGETS[budget]
    field, unit, scale = COSTS[cost]
    measured = float(cost_record[field]) * scale
    if measured > limit:
      problems.append(f"{measured:.3g} {unit} over the budget of {limit:g}")
  return "; ".join(problems)
