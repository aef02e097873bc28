"""A corpus of messy image files, generated at test time (never committed).

`write_bad_inputs` fills one class folder with one file per problem real image
folders have; `pil_view` is the reference RGB image for a file's bytes.
"""
import io
import os

import numpy as np
import tensorflow as tf
from PIL import ExifTags, Image, ImageOps

from testing.helpers import png_bomb

BAD_UTF8_NAME = b"latin1-caf\xe9.jpg"  # a name from a legacy zip, not UTF-8
# Class folder names no label can have (trainer.text.label_problem): TF
# Transform's vocabulary drops a class with a line break, so its images would
# train as another class; the others are terminal controls. (A NUL can't be
# in a file name.)
BAD_CLASS_NAMES = ("new\nline", "car\rriage", "\x1b[31mred", "del\x7f",
                   "tab\there", "line\u2028sep")
# Files in the folder a symlinked folder of the corpus leads to, outside.
LINKED_FOLDER_FILES = 20


def picture(width=48, height=32):
  """Smooth (small JPEG error) and asymmetric (any flip or turn shows)."""
  yy, xx = np.mgrid[0:height, 0:width]
  rgb = np.dstack([xx * 255 // (width - 1), yy * 255 // (height - 1),
                   np.full_like(xx, 90)])
  rgb[:height // 3, :width // 3] = (250, 250, 20)  # a top-left corner block
  return Image.fromarray(rgb.astype(np.uint8))


def encode(image, fmt, **options):
  buf = io.BytesIO()
  image.save(buf, format=fmt, **options)
  return buf.getvalue()


def exif(orientation):
  tags = Image.Exif()
  tags[ExifTags.Base.Orientation] = orientation
  return tags


def grey16(width=48, height=32):
  """A 16-bit grey ramp whose low bytes differ from its high bytes."""
  ramp = np.linspace(0, 65535, width * height).reshape(height, width)
  return Image.fromarray(ramp.astype(np.uint16))


def file_corpus():
  """File name -> bytes, one per kind of file content."""
  # An interrupted download: headers intact, scan data cut short.
  jpeg = encode(picture(480, 320), "JPEG", quality=95)
  a, b = picture(), picture().transpose(Image.Transpose.FLIP_LEFT_RIGHT)
  rgba = picture().convert("RGBA")
  rgba.putalpha(Image.linear_gradient("L").resize(rgba.size))
  return {
      "truncated.jpg": jpeg[:len(jpeg) * 6 // 10],
      "empty.jpg": b"",
      "notes.jpg": b"shopping list: not an image\n",
      "png_named.jpg": encode(picture(), "PNG"),
      "cmyk.jpg": encode(picture().convert("CMYK"), "JPEG", quality=95),
      "grey.jpg": encode(picture().convert("L"), "JPEG", quality=95),
      "rgba.png": encode(rgba, "PNG"),
      "grey16.png": encode(grey16(), "PNG"),
      # PIL can't write 16-bit RGB; TF can.
      "rgb16.png": tf.io.encode_png(tf.constant(
          np.asarray(picture(), np.uint16) * 257)).numpy(),
      "palette.png": encode(picture().convert("P", palette=Image.ADAPTIVE,
                                              colors=8), "PNG",
                            transparency=0),
      "exif6.jpg": encode(picture(), "JPEG", quality=95, exif=exif(6)),
      "exif8.jpg": encode(picture(), "JPEG", quality=95, exif=exif(8)),
      "grey16_exif6.png": encode(grey16(), "PNG", exif=exif(6)),
      "small_40x30.jpg": encode(picture(40, 30), "JPEG", quality=95),
      "phone.jpg": encode(a, "MPO", save_all=True, append_images=[b]),
      # Formats PIL decodes but that are stored as PNG; the GIF's second
      # frame differs, so a stored frame 2 would show.
      "anim.gif": encode(a, "GIF", save_all=True, append_images=[b]),
      "photo.webp": encode(picture(), "WEBP", quality=80),
      "alpha.webp": encode(rgba, "WEBP", lossless=True),
      "rotated.webp": encode(picture(), "WEBP", quality=90, exif=exif(6)),
      "photo.bmp": encode(picture(), "BMP"),
      "photo.tiff": encode(picture(), "TIFF"),
      "grey16.tiff": encode(grey16(), "TIFF"),
      "favicon.ico": encode(picture(), "ICO"),  # decodable, not accepted
      "bomb.png": png_bomb(),
      "café ñ 猫.jpg": encode(picture(), "JPEG", quality=90),
      "with space.png": encode(picture(50, 20), "PNG"),
  }


def write_bad_inputs(folder, outside, inside_target):
  """Writes file_corpus() and the file-system oddities into `folder`.

  outside: a folder outside the data folder; inside_target: an image inside
  the data folder, relative to `folder`, for a symlink to point at.
  """
  os.makedirs(folder, exist_ok=True)
  os.makedirs(outside, exist_ok=True)
  for name, data in file_corpus().items():
    with open(os.path.join(folder, name), "wb") as f:
      f.write(data)
  for hidden in (".DS_Store", os.path.join(".thumbs", "0001.jpg")):
    os.makedirs(os.path.dirname(os.path.join(folder, hidden)), exist_ok=True)
    with open(os.path.join(folder, hidden), "wb") as f:
      f.write(encode(picture(), "JPEG"))
  outside_image = os.path.join(outside, "elsewhere.jpg")
  with open(outside_image, "wb") as f:
    f.write(encode(picture(), "JPEG"))
  os.symlink(inside_target, os.path.join(folder, "link_inside.jpg"))
  os.symlink(outside_image, os.path.join(folder, "link_outside.jpg"))
  os.symlink(os.path.join(outside, "gone.jpg"),
             os.path.join(folder, "dangling.jpg"))
  os.symlink("..", os.path.join(folder, "loop"))  # back to the data folder
  many = os.path.join(outside, "many")
  os.makedirs(many, exist_ok=True)
  for i in range(LINKED_FOLDER_FILES):
    with open(os.path.join(many, f"{i:04d}.jpg"), "wb") as f:
      f.write(encode(picture(8, 8), "JPEG"))
  os.symlink(many, os.path.join(folder, "linked_folder"))
  os.mkfifo(os.path.join(folder, "pipe.jpg"))  # reading it would block
  with open(os.path.join(os.fsencode(folder), BAD_UTF8_NAME), "wb") as f:
    f.write(encode(picture(), "JPEG"))


def write_bad_class_folders(data, per_class=2):
  """A folder per BAD_CLASS_NAMES name in `data`, with `per_class` good
  images each; returns their paths relative to `data`."""
  paths = []
  for name in BAD_CLASS_NAMES:
    os.makedirs(os.path.join(data, name))
    for i in range(per_class):
      paths.append(f"{name}/{i}.png")
      with open(os.path.join(data, paths[-1]), "wb") as f:
        f.write(encode(picture(16 + i, 16), "PNG"))
  return paths


def pil_view(data):
  """PIL's upright RGB view of an image file: the reference pixels."""
  image = ImageOps.exif_transpose(Image.open(io.BytesIO(data)))
  if image.mode == "I;16":  # convert("RGB") clips; 8 bits = the high byte
    grey = (np.asarray(image) >> 8).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=-1)
  return np.asarray(image.convert("RGB"))
