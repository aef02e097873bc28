"""The candidates a run trains and compares: each a resizer and an input ->
target size, spelled `RESIZER:SIZE` or `RESIZER:INPUT-TARGET` on the command
line (`--candidates bilinear:150 learned:300-150 learned:300-112`).

`RESIZER:SIZE` takes the configured --input-size as its input. With no
--candidates a run trains today's pair, learned and bilinear at
--input-size -> --target-size. A candidate's name keys its Trainer, its
TFMA model and its row in the report: the resizer alone when no other
candidate has that resizer (so the default pair keeps the names "learned" and
"bilinear"), else the resizer and both sizes, e.g. "learned_300_112".
Importing this module loads no TensorFlow.
"""
import dataclasses
import re
from typing import Iterable, List, Sequence, Tuple

from trainer.model import RESIZERS

FORM = "RESIZER:SIZE or RESIZER:INPUT-TARGET, RESIZER one of " + \
    " | ".join(RESIZERS)
_SPELLING = re.compile(r"^([a-z]+):(?:(\d+)-)?(\d+)$")


class CandidateError(ValueError):
  """A --candidates item is malformed; the message names it and the form."""


@dataclasses.dataclass(frozen=True)
class Candidate:
  resizer: str
  input_size: int
  target_size: int
  name: str = ""

  @property
  def spelling(self) -> str:
    return f"{self.resizer}:{self.input_size}-{self.target_size}"


def parse_one(text: str, input_size: int) -> Tuple[str, int, int]:
  """(resizer, input size, target size) of one item; CandidateError names
  the item and the form."""
  match = _SPELLING.match(text.strip())
  if not match:
    raise CandidateError(f"--candidates: {text!r} is not {FORM}, e.g. "
                         "learned:300-150 or bilinear:150")
  resizer, given_input, target = match.groups()
  if resizer not in RESIZERS:
    raise CandidateError(f"--candidates: {text!r}: unknown resizer "
                         f"{resizer!r}; {FORM}")
  size_in = int(given_input) if given_input else int(input_size)
  size_out = int(target)
  if not 0 < size_out < size_in:
    raise CandidateError(
        f"--candidates: {text!r}: the target size {size_out} must be positive "
        f"and below the input size {size_in}: the resizer downsamples")
  return resizer, size_in, size_out


def parse(items: Iterable[str], input_size: int) -> List[Candidate]:
  """The named candidates of --candidates items (at least two, no two the
  same), in the order given."""
  items = list(items)
  parsed = [parse_one(item, input_size) for item in items]
  seen = {}
  for item, key in zip(items, parsed):
    if key in seen:
      raise CandidateError(f"--candidates: {item!r} repeats {seen[key]!r}; "
                           "give each candidate once")
    seen[key] = item
  if len(parsed) < 2:
    raise CandidateError(f"--candidates: {len(parsed)} given; give at least "
                         f"two to compare ({FORM})")
  return name_all(parsed)


def name_all(parsed: Sequence[Tuple[str, int, int]]) -> List[Candidate]:
  """Candidates named by resizer, with the sizes only where two share one."""
  count = {r: sum(p[0] == r for p in parsed) for r, _, _ in parsed}
  return [Candidate(r, i, t, r if count[r] == 1 else f"{r}_{i}_{t}")
          for r, i, t in parsed]


def default_pair(input_size: int, target_size: int) -> List[Candidate]:
  """Today's comparison: both resizers at the configured sizes."""
  return name_all([(r, int(input_size), int(target_size)) for r in RESIZERS])


def stored_size(candidates: Sequence[Candidate]) -> int:
  """The side Transform stores every image at: the largest input, so each
  candidate's input is a downscale of the same stored pixels."""
  return max(c.input_size for c in candidates)
