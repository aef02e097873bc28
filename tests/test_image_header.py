"""The in-graph header reader: the sizes PIL and TensorFlow's own decoder
read, for real encodings; a per-image problem, never an error, for bytes
that aren't a readable header; bombs of every format refused."""
import io
import struct

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from testing.helpers import png_bomb
from trainer import image_header

LIMIT = 40_000_000
# Traced once, as in a served model (eagerly, its loops would run in Python).
_header = tf.function(image_header.read, autograph=False, input_signature=[
    tf.TensorSpec([None], tf.string)])


def _encode(image, fmt, **options):
  buf = io.BytesIO()
  image.save(buf, format=fmt, **options)
  return buf.getvalue()


def _noise(width, height, mode="RGB", seed=0):
  rng = np.random.default_rng(seed)
  if mode == "I;16":
    return Image.fromarray(rng.integers(0, 2 ** 16, (height, width),
                                        dtype=np.uint16))
  return Image.fromarray(rng.integers(0, 256, (height, width, 3),
                                      dtype=np.uint8)).convert(mode)


def _jpeg_segment(marker, payload):
  return bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload


def _insert_after_soi(jpeg, extra):
  return jpeg[:2] + extra + jpeg[2:]


def _gif(screen, frames, frame_size=None, trailer=True):
  """A GIF made by hand: `frames` image descriptors of `frame_size` (the
  screen's by default), each with 1 KB of image data in full sub-blocks and
  a short one, after a graphic control extension."""
  width, height = screen
  fw, fh = frame_size or screen
  data = b"GIF89a" + struct.pack("<HHBBB", width, height, 0x80, 0, 0)
  data += bytes(6)  # a global colour table of 2 colours
  for _ in range(frames):
    data += b"\x21\xf9\x04\x00\x00\x00\x00\x00"
    data += b"\x2c" + struct.pack("<HHHHB", 0, 0, fw, fh, 0) + b"\x02"
    data += (b"\xff" + bytes(255)) * 4 + b"\x05" + bytes(5) + b"\x00"
  return data + (b";" if trailer else b"")


def _bmp_top_down(image):
  data = bytearray(_encode(image, "BMP"))
  height = struct.unpack_from("<i", data, 22)[0]
  struct.pack_into("<i", data, 22, -height)
  return bytes(data)


def _read(images):
  header = _header(tf.constant(images, tf.string))
  return [dict(width=int(w), height=int(h), frames=int(f), pixels=int(p),
               problem=problem.decode())
          for w, h, f, p, problem in zip(*(t.numpy() for t in header))]


def _real_encodings():
  rgb = _noise(40, 30)
  exif = Image.Exif()
  exif[0x010F] = "a camera"  # Make
  icc = bytes(70_000)  # PIL splits it into two APP2 segments
  jpeg = _encode(rgb, "JPEG")
  # An EXIF thumbnail's frame header (16x16) inside APP1 must be skipped.
  thumbnail = b"Exif\0\0" + b"\xff\xd8\xff\xc0\x00\x11\x08\x00\x10\x00\x10"
  animated = io.BytesIO()
  frames = [_noise(25, 20, seed=s) for s in range(4)]
  frames[0].save(animated, format="GIF", save_all=True,
                 append_images=frames[1:])
  return {
      "baseline JPEG": jpeg,
      "progressive JPEG": _encode(rgb, "JPEG", progressive=True),
      "JPEG with EXIF and ICC": _encode(rgb, "JPEG", exif=exif,
                                        icc_profile=icc),
      "JPEG with restart markers": _encode(rgb, "JPEG",
                                           restart_marker_blocks=1),
      "JPEG with a thumbnail in APP1": _insert_after_soi(
          jpeg, _jpeg_segment(0xE1, thumbnail + bytes(20))),
      # libjpeg skips fill bytes, junk and RSTn between segments.
      "JPEG with fill, junk and RST": _insert_after_soi(
          jpeg, b"\xff\xff\xff\xd0\x00\x12"),
      "grey JPEG": _encode(_noise(33, 17, "L"), "JPEG"),
      "PNG": _encode(rgb, "PNG"),
      "grey PNG": _encode(_noise(31, 9, "L"), "PNG"),
      "RGBA PNG": _encode(_noise(12, 50, "RGBA"), "PNG"),
      "16-bit PNG": _encode(_noise(20, 21, "I;16"), "PNG"),
      "palette PNG": _encode(_noise(7, 3, "P"), "PNG"),
      "GIF": _encode(rgb, "GIF"),
      "animated GIF": animated.getvalue(),
      "bottom-up BMP": _encode(rgb, "BMP"),
      "top-down BMP": _bmp_top_down(rgb),
  }


def test_sizes_are_pils_and_the_decoders_for_real_encodings():
  images = _real_encodings()
  for (name, data), got in zip(images.items(), _read(list(images.values()))):
    with Image.open(io.BytesIO(data)) as image:
      frames = image.n_frames if image.format == "GIF" else 1
      expected = dict(width=image.width, height=image.height, frames=frames,
                      pixels=image.width * image.height * frames, problem="")
    assert got == expected, name
    # TensorFlow's decoder allocates exactly this.
    decoded = tf.io.decode_image(data, channels=3)
    assert decoded.shape[-3:-1] == (got["height"], got["width"]), name
    assert (decoded.shape[0] if decoded.ndim == 4 else 1) == frames, name
  assert _read([images["animated GIF"]])[0]["frames"] == 4
  # TEM, which PIL refuses and libjpeg skips.
  with_tem = _insert_after_soi(images["baseline JPEG"], b"\xff\x01")
  assert tf.io.decode_image(with_tem).shape == (30, 40, 3)
  assert _read([with_tem])[0]["pixels"] == 40 * 30


def test_unreadable_headers_are_per_image_problems_not_errors():
  jpeg, png = _encode(_noise(40, 30), "JPEG"), _encode(_noise(4, 4), "PNG")
  sof = jpeg.index(b"\xff\xc0")
  gif, bmp = _gif((8, 8), 2), _encode(_noise(5, 5), "BMP")
  cases = {
      "": image_header.EMPTY,
      "\x01\x02\x03": image_header.UNKNOWN,
      "RIFF\0\0\0\0WEBPVP8 ": image_header.UNKNOWN,  # decode_image: no WebP
      jpeg[:3]: image_header.JPEG_TRUNCATED,
      jpeg[:sof + 6]: image_header.JPEG_TRUNCATED,  # inside the frame header
      jpeg[:sof]: image_header.JPEG_TRUNCATED,
      # A segment whose length points past the end of the data.
      _insert_after_soi(jpeg[:sof], b"\xff\xe1\xff\xff" + bytes(10)):
          image_header.JPEG_TRUNCATED,
      _insert_after_soi(jpeg, b"\xff\xda\x00\x02"): image_header.JPEG_NO_FRAME,
      _insert_after_soi(jpeg, b"\xff\xd9"): image_header.JPEG_NO_FRAME,
      _insert_after_soi(jpeg, b"\xff\xc8\x00\x02"):
          image_header.JPEG_BAD_MARKER,
      _insert_after_soi(jpeg, b"\xff\x02\x00\x02"):
          image_header.JPEG_BAD_MARKER,
      _insert_after_soi(jpeg, b"\xff\xd0" * 1100):
          image_header.JPEG_TOO_MANY.format(image_header.MAX_JPEG_SEGMENTS),
      jpeg[:sof + 5] + b"\x00\x00\x00\x10" + jpeg[sof + 9:]:
          image_header.NO_SIZE,
      png[:20]: image_header.PNG_NO_IHDR,
      png[:12] + b"IDAT" + png[16:]: image_header.PNG_NO_IHDR,
      png[:16] + struct.pack(">I", 2 ** 31) + png[20:]:
          image_header.PNG_TOO_WIDE,
      gif[:10]: image_header.GIF_TRUNCATED,
      gif[:-1]: image_header.GIF_TRUNCATED,  # no trailer
      gif[:len(gif) // 2]: image_header.GIF_TRUNCATED,
      gif[:-1] + b"\x99": image_header.GIF_BAD_BLOCK,
      _gif((8, 8), 0): image_header.NO_SIZE,
      (_gif((8, 8), 0, trailer=False)
       + b"\x21\x01\x00" * (image_header.MAX_GIF_STEPS // 2 + 1) + b";"):
          image_header.GIF_TOO_MANY.format(image_header.MAX_GIF_STEPS),
      bmp[:20]: image_header.BMP_TRUNCATED,
      bmp[:18] + struct.pack("<i", -5) + bmp[22:]: image_header.BMP_BAD_WIDTH,
      bmp[:22] + struct.pack("<i", 0) + bmp[26:]: image_header.NO_SIZE,
  }
  images = [c.encode("latin-1") if isinstance(c, str) else c for c in cases]
  rng = np.random.default_rng(0)
  garbage = [rng.bytes(int(n)) for n in rng.integers(1, 3000, 30)]
  got = _read(images + garbage)
  for data, expected, result in zip(images, cases.values(), got):
    assert result == dict(width=0, height=0, frames=0, pixels=0,
                          problem=expected), data[:40]
  for data, result in zip(garbage, got[len(images):]):
    assert result["problem"], data[:40]


def test_every_prefix_of_a_file_is_a_problem_or_its_size():
  """Truncated anywhere: never an error, and never a wrong size."""
  files = [_encode(_noise(9, 7), "JPEG", progressive=True),
           _encode(_noise(9, 7), "PNG"), _gif((9, 7), 2),
           _encode(_noise(9, 7), "BMP")]
  prefixes = [f[:n] for f in files for n in range(len(f) + 1)]
  for data, result in zip(prefixes, _read(prefixes)):
    if not result["problem"]:
      assert (result["width"], result["height"]) == (9, 7), data


def _with_jpeg_size(width, height):
  jpeg = bytearray(_encode(_noise(16, 16), "JPEG"))
  sof = jpeg.index(b"\xff\xc0")
  struct.pack_into(">HH", jpeg, sof + 5, height, width)
  return bytes(jpeg)


def _with_bmp_size(width, height):
  bmp = bytearray(_encode(_noise(4, 4), "BMP"))
  struct.pack_into("<ii", bmp, 18, width, height)
  return bytes(bmp)


@pytest.mark.parametrize("data, size, pixels", [
    (png_bomb(20_000, 20_000), "20000x20000", 400_000_000),
    (_with_jpeg_size(65_535, 65_535), "65535x65535", 65_535 ** 2),
    (_with_bmp_size(30_000, -30_000), "30000x30000", 900_000_000),
    (_gif((65_535, 1_000), 1), "65535x1000", 65_535_000),
    # Every frame is allocated: small frames, many of them.
    (_gif((300, 300), 500), "300x300 x 500 frames", 45_000_000),
    # A frame larger than the screen is allocated at its own size.
    (_gif((10, 10), 1, frame_size=(10_000, 5_000)), "10000x5000",
     50_000_000),
], ids=["png", "jpeg", "bmp", "gif", "gif frames", "gif frame size"])
def test_bombs_are_refused_by_the_size_their_header_declares(data, size,
                                                             pixels):
  jpeg = _encode(_noise(40, 30), "JPEG")
  header = _header(tf.constant([jpeg, data]))
  assert header.pixels.numpy().tolist() == [1200, pixels]
  errors = image_header.refusals(header, LIMIT).numpy().tolist()
  assert errors == [b"", (
      f"image is {size} = {pixels} pixels, above this model's limit of "
      f"{LIMIT} (max_pixels); send a smaller image").encode()]
  # At or under the limit, the same image is answered.
  assert image_header.refusals(header, pixels).numpy().tolist() == [b"", b""]


def test_a_problem_is_refused_with_the_fix():
  header = _header(tf.constant([b"not an image"]))
  assert image_header.refusals(header, LIMIT).numpy()[0].decode() == (
      "not a JPEG, PNG, GIF or BMP image; send a complete JPEG, PNG, GIF or "
      "BMP file")


def _mixed_batch():
  """Every format, readable or not, with junk and garbage between."""
  images = list(_real_encodings().values())
  jpeg, gif = images[0], _gif((9, 7), 3)
  sof = jpeg.index(b"\xff\xc0")
  rng = np.random.default_rng(1)
  return images + [
      b"", b"GIF8", jpeg[:sof], gif[:-1],
      _insert_after_soi(jpeg, bytes(5000) + b"\xff\xff"),  # junk, fill
      _insert_after_soi(jpeg, bytes(5000))[:sof + 4000],  # junk to the end
      _insert_after_soi(jpeg, b"\xff\xd0" * 1100)] + [
          rng.bytes(int(n)) for n in rng.integers(1, 300, 8)]


def test_a_batch_gives_each_image_what_it_gives_alone():
  """Images read together share no state: mixed formats, lengths and
  problems, in two orders."""
  images = _mixed_batch()
  alone = [_read([image])[0] for image in images]
  assert _read(images) == alone
  assert _read(images[::-1]) == alone[::-1]
  assert {r["problem"] for r in alone} >= {
      "", image_header.EMPTY, image_header.UNKNOWN,
      image_header.JPEG_TRUNCATED, image_header.GIF_TRUNCATED,
      image_header.JPEG_TOO_MANY.format(image_header.MAX_JPEG_SEGMENTS)}


def _graph_steps(images):
  """How many graph nodes reading `images` runs (the loops' nodes once a
  step), as the session's full trace counts them."""
  graph = tf.Graph()
  with graph.as_default():
    encoded = tf.compat.v1.placeholder(tf.string, [None])
    header = image_header.read(encoded)
  trace = tf.compat.v1.RunMetadata()
  with tf.compat.v1.Session(graph=graph) as session:
    session.run(header, {encoded: images}, run_metadata=trace,
                options=tf.compat.v1.RunOptions(
                    trace_level=tf.compat.v1.RunOptions.FULL_TRACE))
  return sum(len(device.node_stats) for device in trace.step_stats.dev_stats)


def test_a_batch_is_read_at_once_not_image_by_image():
  """What the served model runs for a batch doesn't grow with its images:
  one walk for all of them, each step vectorised over the batch."""
  images = [_encode(_noise(9, 7), fmt) for fmt in ("JPEG", "PNG", "BMP")]
  images.append(_gif((9, 7), 2))
  steps = _graph_steps(images)
  assert steps > 0
  assert _graph_steps(images * 8) == steps
