"""The gate over K candidates: push the cheapest one not worse than the best.

1. The best is the candidate with the highest score (the task's direction)
   of those that clear the floor.
2. Candidates costlier than the best, over a budget or under the floor are
   never chosen; each is dropped with its reason.
3. Each remaining cheaper candidate is compared with the best on the same
   eval examples (the task's paired test); it is dropped when it is behind
   by more than `tolerance` at `confidence`, after two corrections:
   - the best is the highest of the R other candidates that clear the floor,
     scored on these same images, so its lead is the largest of R chances:
     each p-value is multiplied by R (Bonferroni; "behind the best" implies
     "behind one of the R", whichever it is);
   - Holm's correction for the number of cheaper candidates compared.
   With R = 1 (the default pair) neither changes anything.
4. The cheapest candidate left is chosen.

With the default pair (learned, and the cheaper bilinear) and tolerance =
--min-gain this is the superiority gate of two models: bilinear unless
learned is ahead by more than min_gain at the stated confidence.
"""
import dataclasses
from typing import Callable, Dict, Optional, Sequence

from gate import costs, stats

# Why the choice came out as it did.
CHEAPEST = "cheapest"        # the cheapest eligible candidate is not worse
COSTLIER = "costlier"        # cheaper ones were worse: a costlier one chosen
UNDER_FLOOR = "under_floor"  # no candidate clears the floor
OVER_BUDGET = "over_budget"  # no candidate within the budgets clears the floor
WITHIN_BUDGET = "within_budget"  # the best is over a budget; the best within
BEHIND = "behind the best"


@dataclasses.dataclass(frozen=True)
class Entry:
  """One candidate's evidence: its score (the task's headline), its cost
  record (cost.json) and whether it clears the floor."""
  name: str
  score: float
  cost: Dict[str, float]
  clears_floor: bool


@dataclasses.dataclass(frozen=True)
class Decision:
  chosen: str
  best: str
  outcome: str
  # name -> why it was not chosen (the chosen one and the best have none,
  # unless the best itself was dropped)
  dropped: Dict[str, str]
  # name -> its Comparison with the best (positive favours it), for the
  # cheaper candidates tested, and its adjusted p-value (step 3)
  comparisons: Dict[str, stats.Comparison]
  adjusted_p: Dict[str, float]
  # the other candidates that clear the floor, of which the best is the
  # highest: the factor on each p-value
  rivals: int
  reason: str

  def as_dict(self):
    d = dataclasses.asdict(self)
    d["comparisons"] = {k: v.as_dict() for k, v in self.comparisons.items()}
    return d


def decide(entries: Sequence[Entry],
           compare: Callable[[str, str], stats.Comparison],
           tolerance: float, confidence: float, cost: str = costs.DEFAULT,
           budgets: Optional[Dict[str, Optional[float]]] = None,
           higher_is_better: bool = True) -> Decision:
  """compare(a, b): the paired Comparison of a against b at `confidence`,
  positive when a is better."""
  if len(entries) < 2:
    raise ValueError(f"need at least two candidates, got {len(entries)}")
  budgets = budgets or {}
  by_name = {e.name: e for e in entries}
  price = {e.name: costs.value(e.cost, cost) for e in entries}
  sign = 1.0 if higher_is_better else -1.0
  # Ties: the cheaper, then the first given, is the best / the cheaper.
  order = {e.name: i for i, e in enumerate(entries)}
  # The best of those that clear the floor (all of them when none does).
  best = max([e for e in entries if e.clears_floor] or entries,
             key=lambda e: (sign * e.score, -price[e.name],
                            -order[e.name])).name
  cheapest_first = sorted(by_name, key=lambda n: (price[n], order[n]))

  dropped: Dict[str, str] = {}
  for name in cheapest_first:
    entry = by_name[name]
    broken = costs.over_budget(entry.cost, budgets)
    if broken:
      dropped[name] = broken
    elif not entry.clears_floor:
      dropped[name] = "under the floor"
    elif name != best and price[name] > price[best]:
      dropped[name] = (f"costlier than the best ({costs.text(entry.cost, cost)}"
                       f" vs {costs.text(by_name[best].cost, cost)}) and no "
                       "better")
  tested = [n for n in cheapest_first
            if n not in dropped and n != best and price[n] <= price[best]]
  comparisons = {n: compare(n, best) for n in tested}
  rivals = sum(e.clears_floor for e in entries) - 1
  adjusted = dict(zip(tested, stats.holm(
      [min(1.0, rivals * stats.worse_p_value(comparisons[n], tolerance))
       for n in tested])))
  for name in tested:
    if adjusted[name] < 1 - confidence:
      dropped[name] = (f"{BEHIND} by more than the tolerance: "
                       f"{stats.describe(comparisons[name])}, adjusted "
                       f"{stats.p_text(adjusted[name])}"
                       f"{adjustment(rivals, len(tested))}")
  left = [n for n in cheapest_first if n not in dropped]
  within = [n for n in cheapest_first
            if not costs.over_budget(by_name[n].cost, budgets)]
  floor_cleared = [n for n in within if by_name[n].clears_floor]
  if left:
    chosen = left[0]
    outcome = COSTLIER if any(
        _behind(dropped.get(n, "")) for n in
        cheapest_first[:cheapest_first.index(chosen)]) else CHEAPEST
  elif floor_cleared:
    # The best is over a budget and every candidate within it is dropped:
    # the best-scoring one within the budgets.
    chosen = max(floor_cleared,
                 key=lambda n: (sign * by_name[n].score, -price[n]))
    outcome = WITHIN_BUDGET
    dropped.pop(chosen)
  else:
    chosen = (within or cheapest_first)[0]
    outcome = (UNDER_FLOOR if not any(e.clears_floor for e in entries)
               else OVER_BUDGET)
  return Decision(chosen=chosen, best=best, outcome=outcome, dropped=dropped,
                  comparisons=comparisons, adjusted_p=adjusted, rivals=rivals,
                  reason=_reason(chosen, best, outcome, dropped, comparisons,
                                 adjusted, by_name, cost, cheapest_first,
                                 adjustment(rivals, len(tested))))


def adjustment(rivals: int, tested: int) -> str:
  """How a p-value of "behind the best" was adjusted (step 3), in words;
  empty for two candidates, where nothing is."""
  if rivals <= 1 and tested <= 1:
    return ""
  return (f" (x{rivals}: the best is the highest of {rivals + 1}; Holm over "
          f"{tested} compared)")


def _behind(why: str) -> bool:
  """Dropped by the paired test."""
  return why.startswith(BEHIND)


def _reason(chosen, best, outcome, dropped, comparisons, adjusted, by_name,
            cost, cheapest_first, how) -> str:
  cost_of = {n: costs.text(by_name[n].cost, cost) for n in by_name}
  if outcome == UNDER_FLOOR:
    head = f"no candidate clears the floor; {chosen}, the cheapest, goes on"
  elif outcome == OVER_BUDGET:
    head = (f"no candidate within the budget clears the floor; {chosen}, "
            "the cheapest, goes on")
  elif outcome == WITHIN_BUDGET:
    head = (f"chose {chosen} ({cost_of[chosen]}), the best within the "
            f"budget; the best, {best}, is over it")
  elif chosen == best:
    head = (f"chose {chosen} ({cost_of[chosen]}), the best"
            + (" and the cheapest left" if len(cheapest_first) > 1 else ""))
  else:
    against = comparisons.get(chosen)
    evidence = (f": {stats.describe(against)}, adjusted "
                f"{stats.p_text(adjusted[chosen])}{how}" if against else "")
    head = (f"chose {chosen} ({cost_of[chosen]}), the cheapest not behind "
            f"the best, {best} ({cost_of[best]}), by more than the "
            f"tolerance{evidence}")
  lines = [head]
  for name in cheapest_first:
    if name in dropped and name != chosen:
      lines.append(f"{name} ({cost_of[name]}) dropped: {dropped[name]}")
  return "; ".join(lines)



def front(entries: Sequence[Entry], cost: str = costs.DEFAULT,
          higher_is_better: bool = True):
  """The names of the non-dominated candidates, cheapest first: none is
  both cheaper-or-equal and better-or-equal than another, once strictly."""
  sign = 1.0 if higher_is_better else -1.0
  points = {e.name: (costs.value(e.cost, cost), sign * e.score)
            for e in entries}

  def dominated(name):
    c, s = points[name]
    return any(oc <= c and os_ >= s and (oc, os_) != (c, s)
               for other, (oc, os_) in points.items() if other != name)
  return sorted((n for n in points if not dominated(n)),
                key=lambda n: points[n][0])
