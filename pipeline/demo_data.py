"""The embedded demo datasets: synthetic images where fine detail is the class
(classification) or the number to predict (regression, labels in a CSV).

Each image is a noisy, randomly tinted background with a patch of a fine
texture; the texture decides the class. At 2x downsampling a plain bilinear
resize averages period-2 textures towards flat grey, so which resize a model
uses matters, the point of the learned resizer. Deterministic for a seed.
"""
import csv
import os

import numpy as np
from PIL import Image

import tasks

# name -> function(yy, xx) -> {0, 1} pattern over pixel coordinates
TEXTURES = {
    "horizontal": lambda y, x: y % 2,
    "vertical": lambda y, x: x % 2,
    "checker": lambda y, x: (x + y) % 2,
    "diagonal": lambda y, x: ((x + y) // 2) % 2,
    "dots": lambda y, x: ((x % 3 == 0) & (y % 3 == 0)).astype(int),
}


def make_image(texture, size, rng):
  yy, xx = np.mgrid[0:size, 0:size]
  base = rng.uniform(60, 190, size=3)
  image = np.ones((size, size, 3)) * base + rng.normal(0, 12, (size, size, 3))
  patch = int(size * rng.uniform(0.45, 0.7))
  top, left = rng.integers(0, size - patch + 1, size=2)
  pattern = TEXTURES[texture](yy, xx)[top:top + patch, left:left + patch]
  contrast = rng.uniform(45, 80) * rng.choice([-1, 1], size=3)
  image[top:top + patch, left:left + patch] += pattern[..., None] * contrast
  return Image.fromarray(np.clip(image, 0, 255).astype(np.uint8))


def write_demo_data(output, per_class=60, size=96, classes=5, seed=0,
                    png_every=5):
  """Writes <output>/<texture>/<n>.jpg|png; returns the number of files.

  Every `png_every`-th image is PNG so both formats are exercised.
  """
  if not 2 <= classes <= len(TEXTURES):
    raise ValueError(f"classes must be between 2 and {len(TEXTURES)}")
  rng = np.random.default_rng(seed)
  count = 0
  for texture in list(TEXTURES)[:classes]:
    folder = os.path.join(output, texture)
    os.makedirs(folder, exist_ok=True)
    for i in range(per_class):
      image = make_image(texture, size, rng)
      if png_every and i % png_every == png_every - 1:
        image.save(os.path.join(folder, f"{i:04d}.png"))
      else:  # high quality, no chroma subsampling: keep the fine detail
        image.save(os.path.join(folder, f"{i:04d}.jpg"), quality=95,
                   subsampling=0)
      count += 1
  return count


REGRESSION_LABELS = "labels.csv"


def make_regression_image(size, contrast, rng):
  """A tinted noisy background with a checkerboard patch of period 2 whose
  contrast is the target: 2x bilinear downsampling averages it to flat."""
  yy, xx = np.mgrid[0:size, 0:size]
  image = np.ones((size, size, 3)) * rng.uniform(60, 190, size=3)
  image += rng.normal(0, 6, (size, size, 3))
  patch = int(size * rng.uniform(0.5, 0.7))
  top, left = rng.integers(0, size - patch + 1, size=2)
  pattern = ((xx + yy) % 2)[top:top + patch, left:left + patch] * 2.0 - 1.0
  image[top:top + patch, left:left + patch] += pattern[..., None] * contrast / 2
  return Image.fromarray(np.clip(image, 0, 255).astype(np.uint8))


def write_regression_demo_data(output, count=300, size=96, seed=0,
                               png_every=5):
  """Writes <output>/images/<n>.jpg|png and <output>/labels.csv (columns
  image, target: the checkerboard's contrast, 0-100); returns the count."""
  rng = np.random.default_rng(seed)
  folder = os.path.join(output, "images")
  os.makedirs(folder, exist_ok=True)
  rows = []
  for i in range(count):
    target = round(float(rng.uniform(0, 100)), 2)
    image = make_regression_image(size, target, rng)
    name = f"{i:04d}.png" if png_every and i % png_every == png_every - 1 \
        else f"{i:04d}.jpg"
    if name.endswith(".png"):
      image.save(os.path.join(folder, name))
    else:
      image.save(os.path.join(folder, name), quality=95, subsampling=0)
    rows.append((f"images/{name}", target))
  with open(os.path.join(output, REGRESSION_LABELS), "w", newline="") as f:
    writer = csv.writer(f)
    writer.writerow(["image", "target"])
    writer.writerows(rows)
  return count


def write(task, output, per_class=60, size=96, classes=5, seed=0):
  """Writes the demo dataset of `task` (its name): class folders, or for a
  task without them a labels CSV of numbers; returns what to tell the
  user."""
  if not tasks.get(task).from_folders:
    n = write_regression_demo_data(output, per_class, size, seed)
    labels = os.path.join(output, REGRESSION_LABELS)
    return (f"wrote {n} images and {REGRESSION_LABELS} to {output}: run with "
            f"--labels {labels}")
  n = write_demo_data(output, per_class, size, classes, seed)
  return f"wrote {n} images to {output}"
