"""Paired comparison of two classifiers scored on the same eval examples.

Both models see the same images, so only the examples where exactly one of them
is right carry evidence: b (candidate right, baseline wrong) and c (the
reverse). Given m = b + c, b is Binomial(m, pi); "no difference" is pi = 1/2.

- p-value: McNemar's exact test, two-sided (twice the smaller binomial tail).
- interval of the top-1 difference d = (b - c) / n: the Clopper-Pearson
  interval of pi mapped through d = (2 pi - 1) m / n. It is the inversion of
  the same exact test, so the interval excludes 0 exactly when p < 1 - confidence;
  the two can never tell different stories.
- gates: superiority (lower bound above a margin) picks the learned resizer;
  non-inferiority (upper bound not below -tolerance) lets a candidate replace
  production.
"""
import dataclasses
import math

from scipy import stats as _stats

TEST_NAME = "exact McNemar (paired, two-sided)"
T_TEST_NAME = "paired t on squared errors (two-sided)"
DETECTABLE_POWER = 0.8  # power at which the smallest detectable difference is stated
REFERENCE_DIFFERENCE = 0.05  # the report warns when this is not detectable


@dataclasses.dataclass(frozen=True)
class Comparison:
  """How much better the candidate is than the baseline on n paired eval
  examples: top-1 difference (McNemar) or MSE reduction (paired t);
  positive favours the candidate."""
  n: int
  difference: float
  lower: float
  upper: float
  p_value: float
  confidence: float
  detectable: float     # smallest |difference| found at DETECTABLE_POWER
  candidate_only: int = None  # b: candidate right, baseline wrong
  baseline_only: int = None   # c: baseline right, candidate wrong
  test: str = TEST_NAME
  metric: str = "top-1"       # or "MSE"

  def as_dict(self):
    return dataclasses.asdict(self)

  def mirrored(self):
    """The same evidence from the baseline's side (positive favours it)."""
    return dataclasses.replace(
        self, difference=-self.difference, lower=-self.upper,
        upper=-self.lower, candidate_only=self.baseline_only,
        baseline_only=self.candidate_only)

  @classmethod
  def from_dict(cls, d):
    return cls(**{f.name: d[f.name] for f in dataclasses.fields(cls)
                  if f.name in d})


def mcnemar_exact_p(b, c):
  """Two-sided exact McNemar p-value from the discordant counts."""
  m = b + c
  if m == 0:
    return 1.0
  tail = _stats.binom.cdf(min(b, c), m, 0.5)
  return float(min(1.0, 2.0 * tail))


def _clopper_pearson(k, m, confidence):
  alpha = 1.0 - confidence
  low = 0.0 if k == 0 else _stats.beta.ppf(alpha / 2, k, m - k + 1)
  high = 1.0 if k == m else _stats.beta.ppf(1 - alpha / 2, k + 1, m - k)
  return float(low), float(high)


def detectable_difference(n, discordant, confidence, power=DETECTABLE_POWER):
  """Smallest true difference the paired test finds with `power`.

  Normal approximation of McNemar's test: the difference's standard error is
  about sqrt(psi / n), psi the discordant share; psi is at least the
  difference itself, hence the k^2 / n term when few examples disagree.
  """
  if n <= 0:
    return 1.0
  k = _stats.norm.ppf(1 - (1 - confidence) / 2) + _stats.norm.ppf(power)
  psi = discordant / n
  return float(min(1.0, max(k * math.sqrt(psi / n), k * k / n)))


def paired_accuracy(n, candidate_only, baseline_only, confidence=0.95):
  """The Comparison of two classifiers from their paired 2x2 table."""
  if not 0 < confidence < 1:
    raise ValueError(f"confidence={confidence}: must be between 0 and 1")
  b, c = int(round(candidate_only)), int(round(baseline_only))
  n = int(round(n))
  if b < 0 or c < 0 or b + c > n:
    raise ValueError(f"inconsistent paired counts: n={n}, b={b}, c={c}")
  m = b + c
  if m == 0:  # identical right/wrong on every example: no evidence either way
    lower = upper = 0.0
  else:
    pi_low, pi_high = _clopper_pearson(b, m, confidence)
    lower, upper = (2 * pi_low - 1) * m / n, (2 * pi_high - 1) * m / n
  return Comparison(
      n=n, candidate_only=b, baseline_only=c,
      difference=(b - c) / n if n else 0.0, lower=lower, upper=upper,
      p_value=mcnemar_exact_p(b, c), confidence=confidence,
      detectable=detectable_difference(n, m, confidence))


def paired_squared_error(n, diff_sum, diff_sumsq, confidence=0.95):
  """Numeric targets: d_i = (baseline error)^2 - (candidate error)^2 per eval
  example, from its sums; the difference is the MSE reduction, its interval
  the paired t-interval (the mean of n differences is close to normal)."""
  if not 0 < confidence < 1:
    raise ValueError(f"confidence={confidence}: must be between 0 and 1")
  n = int(round(n))
  if n < 2:
    raise ValueError(f"need at least 2 paired eval examples, got {n}")
  mean = diff_sum / n
  var = max(diff_sumsq / n - mean * mean, 0.0) * n / (n - 1)
  se = math.sqrt(var / n)
  t_crit = _stats.t.ppf(1 - (1 - confidence) / 2, n - 1)
  if se == 0:
    p = 1.0 if mean == 0 else 0.0
  else:
    p = float(2 * _stats.t.sf(abs(mean) / se, n - 1))
  detectable = (t_crit + _stats.norm.ppf(DETECTABLE_POWER)) * se
  return Comparison(n=n, difference=mean, lower=mean - t_crit * se,
                    upper=mean + t_crit * se, p_value=p, confidence=confidence,
                    detectable=float(detectable), test=T_TEST_NAME,
                    metric="MSE")


def superior(comparison, margin):
  """The candidate is ahead by more than `margin`, at the stated confidence."""
  return comparison.lower > margin


def significantly_worse(comparison, tolerance):
  """The candidate is behind by more than `tolerance`, at the stated confidence."""
  return comparison.upper < -tolerance


def worse_p_value(comparison, tolerance):
  """The p-value of "the candidate is behind by more than `tolerance`", on
  the scale of the two-sided intervals: significantly_worse holds at
  confidence C exactly when this is below 1 - C. It is the inversion of the
  interval the Comparison states (Clopper-Pearson, or the paired t), so a
  multiple-testing correction (holm) can act on it."""
  c = comparison
  if c.test == TEST_NAME:
    b, m = c.candidate_only, c.candidate_only + c.baseline_only
    if m == 0:
      return 0.0 if tolerance < 0 else 1.0
    threshold = (1 - tolerance * c.n / m) / 2  # pi where d = -tolerance
    if b == m or threshold <= 0:
      return 1.0
    if threshold >= 1:
      return 0.0
    return float(min(1.0, 2 * _stats.beta.sf(threshold, b + 1, m - b)))
  t_crit = _stats.t.ppf(1 - (1 - c.confidence) / 2, c.n - 1)
  se = (c.upper - c.lower) / (2 * t_crit)
  if se == 0:
    return 0.0 if c.difference < -tolerance else 1.0
  return float(min(1.0, 2 * _stats.t.sf(-(c.difference + tolerance) / se,
                                        c.n - 1)))


def holm(p_values):
  """Holm's step-down adjusted p-values, in the order given: reject where
  the adjusted value is below the level; the chance of any false rejection
  stays at most the level, whatever the dependence between the tests."""
  order = sorted(range(len(p_values)), key=lambda i: p_values[i])
  adjusted, running = [1.0] * len(p_values), 0.0
  for rank, i in enumerate(order):
    running = max(running, min(1.0, (len(p_values) - rank) * p_values[i]))
    adjusted[i] = running
  return adjusted


def describe(comparison):
  """'+1.2 points, 95% CI -2.1...+4.5, p = 0.41, 1000 eval images', or in
  MSE 'MSE 3.1 lower, 95% CI -0.4...+6.6, p = 0.08, 91 eval images'."""
  c = comparison
  interval = f"{100 * c.confidence:.0f}% CI"
  if c.metric == "MSE":
    what = (f"MSE {abs(c.difference):.4g} "
            f"{'lower' if c.difference >= 0 else 'higher'}, {interval} "
            f"{c.lower:+.4g}…{c.upper:+.4g}")
  else:
    what = (f"{100 * c.difference:+.1f} points, {interval} "
            f"{100 * c.lower:+.1f}…{100 * c.upper:+.1f}")
  return f"{what}, {p_text(c.p_value)}, {c.n} eval images"


def power_note(comparison):
  """A sentence when the eval split is too small for REFERENCE_DIFFERENCE
  (5 points of top-1; in MSE units: stated always)."""
  c = comparison
  if c.metric == "MSE":
    return (f"With {c.n} eval images the smallest MSE reduction detected with "
            f"{100 * DETECTABLE_POWER:.0f}% power is about {c.detectable:.4g}.")
  if c.detectable <= REFERENCE_DIFFERENCE:
    return ""
  return (f"The eval split ({c.n} images) is too small to detect a "
          f"{100 * REFERENCE_DIFFERENCE:.0f}-point difference: the smallest it "
          f"detects with {100 * DETECTABLE_POWER:.0f}% power is about "
          f"{100 * c.detectable:.1f} points.")


def p_text(p):
  """'p = 0.041', or 'p < 0.001'."""
  return f"p = {p:.2g}" if p >= 0.001 else "p < 0.001"
