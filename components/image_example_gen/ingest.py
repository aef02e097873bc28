"""The ingest library: what one image file becomes, and the labels it gets.

No Beam and no TFX here (decode_transform.py runs this on Beam, executor.py
is the TFX executor); remote paths go through tf.io.gfile (input_folder.py).

Each split pattern names a split root (`train/*/*` -> `train/`). Every file
under it is read once and fully decoded with PIL to validate it; a file that
can't be used becomes a rejection with a reason instead of failing the run.

Transform and the served model decode `image/encoded` with
tf.io.decode_image(channels=3), which agrees with PIL's RGB view of every PNG
and JPEG mode (grey, palette, alpha, 16-bit, CMYK; JPEG up to TF's faster
IDCT) but ignores EXIF orientation. So the original bytes are kept, except for
images with an EXIF orientation and files in the other formats PIL decodes
(WebP, BMP, GIF, TIFF): those are stored as a lossless PNG of the upright RGB
image, and `image/normalized` says why. `predict` (pipeline/predict.py) sends
a model what inspect_image stores, so it sees the pixels it was trained on.

The decompression-bomb limit is max_pixels, checked per file on the header;
PIL's own process-wide Image.MAX_IMAGE_PIXELS is read, never changed.
"""
import hashlib
import io
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

import tasks
from components.image_example_gen import input_folder, labels_csv
from trainer import features
from trainer.text import escape, label_problem

# The eval split's folder, in order of preference (pipeline/data_layout.py
# picks the first that exists; a second one is reported as not read).
EVAL_DIRS = ("validation", "eval")
# Kept as the file's bytes. MPO is a JPEG with extra frames (phone cameras);
# both decoders read frame 1.
_KEPT = {"JPEG": "jpeg", "MPO": "jpeg", "PNG": "png"}
# Decoded by PIL and stored as a lossless PNG of the (first frame's) RGB
# image: Transform's tf.io.decode_image reads none of WebP and TIFF, and
# only this project's PNG/JPEG path is tested to match PIL's pixels.
_CONVERTED = {"WEBP": "webp", "BMP": "bmp", "GIF": "gif", "TIFF": "tiff"}
ACCEPTED = "JPEG, PNG, WebP, BMP, GIF (first frame), TIFF"
# The reason for a file that is no image PIL knows (predict gives it too).
UNRECOGNISED = ("cannot decode image: unrecognised content, not an image "
                f"format PIL knows (accepted: {ACCEPTED})")


def pil_pixel_limit() -> Optional[int]:
  """Pixels above which PIL itself refuses to open an image (None: none).

  PIL.Image.MAX_IMAGE_PIXELS is process-wide, so this module only reads it:
  max_pixels is checked per file below it, and can't be raised past it.
  """
  limit = Image.MAX_IMAGE_PIXELS
  return None if limit is None else 2 * limit


def check_max_pixels(max_pixels: int) -> None:
  """Raises ValueError for a max_pixels the executor can't honour."""
  limit = pil_pixel_limit()
  if max_pixels <= 0 or (limit is not None and max_pixels > limit):
    raise ValueError(
        f"max_pixels {max_pixels} must be positive and at most {limit}, "
        "PIL's own decompression-bomb limit (2 x PIL.Image.MAX_IMAGE_PIXELS), "
        "which this pipeline leaves in place")


def split_root(pattern: str) -> str:
  """`train/*/*` -> `train`; `*/*` -> `` (the input base itself)."""
  parts = pattern.split("/")
  if parts[-2:] != ["*", "*"]:
    raise ValueError(f"split pattern {pattern!r} must end in '*/*' "
                     "(<split>/<class>/<image>)")
  return "/".join(parts[:-2])



def _bytes(value: bytes) -> tf.train.Feature:
  return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))


def _int(value: int) -> tf.train.Feature:
  return tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))


class Ingested(NamedTuple):
  encoded: bytes    # the file itself, or a PNG of the normalised image
  fmt: str          # format of `encoded`: "jpeg" | "png"
  width: int        # of the image as stored (upright)
  height: int
  normalized: str   # why `encoded` is a re-encoding; "" when it is the file


def exif_orientation(image: Image.Image) -> int:
  orientation = image.getexif().get(ExifTags.Base.Orientation, 1)
  return orientation if orientation in range(2, 9) else 1  # 1: as stored


def rgb_view(image: Image.Image) -> Image.Image:
  """The 8-bit RGB image TF's decoders give for `image`'s pixels."""
  if image.mode.startswith("I"):
    # 16-bit grey: PIL's convert clips at 255; TF (libpng) keeps the high byte.
    image = Image.fromarray((np.asarray(image) >> 8).astype(np.uint8))
  return image.convert("RGB")


def inspect_image(data: bytes, max_pixels: int) -> Ingested:
  """Validates, and normalises when TF would decode it differently.

  Raises ValueError with the reason when the file can't be used.
  """
  if not data:
    raise ValueError("empty file (0 bytes)")
  try:
    # Image.open reads only the header: the size check happens before decoding.
    with Image.open(io.BytesIO(data)) as image:
      width, height = image.size
      fmt = image.format
      if fmt not in _KEPT and fmt not in _CONVERTED:
        raise ValueError(f"unsupported format {fmt} (accepted: {ACCEPTED})")
      if width * height > max_pixels:
        raise ValueError(_too_big(f"{width}x{height} = {width * height} "
                                  "pixels", max_pixels))
      image.load()  # full decode (frame 1): truncated or corrupt data fails
      orientation = exif_orientation(image)
      if fmt in _KEPT and orientation == 1:
        return Ingested(data, _KEPT[fmt], width, height, "")
      why = [f"converted_from={_CONVERTED[fmt]}"] if fmt in _CONVERTED else []
      if orientation != 1:
        why.append(f"exif_orientation={orientation}")
      # Reuses the decoded pixels: no second decode.
      upright = rgb_view(ImageOps.exif_transpose(image))
      buf = io.BytesIO()
      upright.save(buf, format="PNG")
      return Ingested(buf.getvalue(), "png", upright.width, upright.height,
                      ",".join(why))
  except ValueError:
    raise
  except Image.DecompressionBombError as e:
    # PIL's own limit, at or above max_pixels (check_max_pixels), fired first.
    raise ValueError(_too_big(str(e).split(" exceeds")[0], max_pixels)) from None
  except UnidentifiedImageError:  # its message holds a memory address
    raise ValueError(UNRECOGNISED) from None
  except Exception as e:  # PIL raises many types for undecodable data.
    raise ValueError(f"cannot decode image: {e.__class__.__name__}: {e}") from None


def _too_big(declared: str, max_pixels: int) -> str:
  return (f"{declared} is above the max_pixels limit {max_pixels} (possible "
          "decompression bomb); raise max_pixels if the image is genuine")


def make_example(image: Ingested, label, rel_path: str,
                 task: str = "") -> tf.train.Example:
  """label: the target as the task (its name; "": the default) stores it: a
  class name, a number."""
  kind = tasks.named(task)
  target = kind.example_feature(label)
  return tf.train.Example(features=tf.train.Features(feature={
      features.IMAGE: _bytes(image.encoded),
      target[0]: target[1],
      features.HEIGHT: _int(image.height),
      features.WIDTH: _int(image.width),
      features.FORMAT: _bytes(image.fmt.encode()),
      features.FILENAME: _bytes(rel_path.encode("utf-8")),
      features.NORMALIZED: _bytes(image.normalized.encode()),
  }))


class CsvLabels:
  """What decoding needs of a labels CSV (labels_csv.py): each image's label
  (class name, or float target) and split ("train", "eval", or None for the
  hash split)."""

  def __init__(self, labels: labels_csv.Labels, input_base: str):
    self.name = labels.path
    self.task = labels.task
    self.rows = {path: (labels.value(row), labels_csv.split_of(row))
                 for path, row in labels.rows.items()}
    self.unused = {path: f"its row in {labels.path} is not used: {reason}"
                   for path, reason in labels.rejected_paths.items()}
    base = input_base.rstrip("/") + "/"
    self.own_path = (labels.path[len(base):]
                     if labels.path.startswith(base) else None)

  def has_row(self, rel_path: str) -> bool:
    return rel_path in self.rows or rel_path in self.unused

  def lookup(self, rel_path: str) -> Tuple[Any, Optional[str], str]:
    """(label or None, split, why there is no label)."""
    if rel_path == self.own_path:
      return None, None, "the labels CSV (--labels), not an image"
    if rel_path in self.unused:
      return None, None, self.unused[rel_path]
    if rel_path not in self.rows:
      return None, None, (f"no row in {self.name}; add one (its path "
                          "relative to the data folder) or remove the file")
    value, split = self.rows[rel_path]
    return value, split, ""

  def row_outcomes(self, labels: labels_csv.Labels,
                   listed: Sequence[str]) -> List[Dict[str, Any]]:
    """Rejections of rows: the CSV's own (duplicates, bad targets, unknown
    splits) and rows whose image is not under the data folder."""
    present = set(listed)
    rejected = [(where, reason) for where, reason in labels.rejected]
    rejected += [(f"{self.name}:{row.number}",
                  f"row {row.number}: no image at {escape(path)} under the "
                  "data folder") for path, row in labels.rows.items()
                 if path not in present]
    return [{"path": where, "class": None, "split_root": None,
             "status": "rejected", "reason": reason}
            for where, reason in rejected]



# An input split: (its root, its output split), or (root, None) when the
# output split of each file is chosen by hash (a HashSplit).
InputSplit = Tuple[str, Optional[str]]
# An ingested file's tf.Example -> its output split.
HashSplit = Callable[[tf.train.Example], str]


class FileIngester:
  """Turns one listed file of an input split into its outcome (the report's
  record of it) and, when ingested, its output split and tf.Example."""

  def __init__(self, input_base: str, inputs: Sequence[InputSplit],
               max_pixels: int, labels: Optional[CsvLabels] = None,
               hash_split: Optional[HashSplit] = None):
    self._labels = labels
    # Class folders label for the default task; a CSV for its own.
    self._task = labels.task if labels is not None else ""
    self._input_base = input_base
    self._inputs = list(inputs)
    self._max_pixels = max_pixels
    self._hash_split = hash_split
    self._real_base: Optional[str] = None

  def open(self) -> None:
    """Resolves the input base once, before the first ingest()."""
    self._real_base = input_folder.real_base(self._input_base)

  def ingest(self, index: int, listed: input_folder.Listed
             ) -> Tuple[Dict[str, Any], str, Optional[bytes]]:
    """(outcome record, output split, serialized tf.Example or None when
    rejected) for one file of input `index`."""
    root, split = self._inputs[index]
    rel_path, name_problem, _ = listed
    # list_files(input_base, root) lists paths below root only.
    inside = rel_path[len(root) + 1:] if root else rel_path
    parts = inside.split("/")
    hidden = any(p.startswith(".") for p in parts)
    row_split = None
    if self._labels is not None:
      label, row_split, why_not = self._labels.lookup(rel_path)
      # A row names it (`..j.png`, `.x/a.png`): hidden or not, it is meant.
      hidden = hidden and not self._labels.has_row(rel_path)
    else:
      label = parts[0] if len(parts) > 1 and not hidden else None
      why_not = ("not inside a class folder; move it into <class>/ so its "
                 "label is known")
      bad_name = (label_problem(label, "class folder name")
                  if label is not None else "")
      if bad_name:
        # Not a class: TF Transform's vocabulary would drop it, and its
        # images would train as another class.
        label, why_not = None, bad_name
    outcome = {"path": rel_path, "split_root": root,
               "class": label if isinstance(label, str) else None}
    try:
      if name_problem:
        raise ValueError(name_problem)
      if hidden:
        raise ValueError("hidden file or folder (name starts with '.')")
      if label is None:
        raise ValueError(why_not)
      data = input_folder.read_file(self._input_base, listed, self._real_base)
      image = inspect_image(data, self._max_pixels)
    except (ValueError, OSError, tf.errors.OpError) as e:
      if isinstance(e, tf.errors.OpError):
        reason = e.message
      elif isinstance(e, OSError) and e.strerror:
        reason = f"cannot read the file: {e.strerror}"
      else:
        reason = str(e)
      return {**outcome, "status": "rejected", "reason": reason}, "", None
    example = make_example(image, label, rel_path, self._task)
    if row_split is not None:  # the labels CSV's split column
      split = row_split
    elif split is None:
      split = self._hash_split(example)
    return {
        **outcome, "status": "ingested", "normalized": image.normalized,
        "split": split,  # the report counts each split's examples from these
        # Of the file, so duplicates are found whatever was stored.
        "sha256": hashlib.sha256(data).hexdigest(),
    }, split, example.SerializeToString()
