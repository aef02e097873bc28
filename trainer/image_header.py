"""How many pixels decoding an image would allocate, read from its header
in-graph, without decoding it.

The served model decodes with tf.io.decode_image (JPEG, PNG, GIF, BMP), which
allocates the size the header declares: a tiny file can declare a huge
image (a decompression bomb). `read` gives each image's declared size, or a
problem when its header can't be read; it never raises, whatever the bytes.
`refusals` turns that into one error per image against a pixel limit.
Pure TensorFlow ops, so a served model carries it without project code.
"""
from typing import NamedTuple

import tensorflow as tf

FORMATS = "JPEG, PNG, GIF or BMP"
# Problems: why a header gives no size. Each image gets "" or one of these.
EMPTY = "empty (0 bytes)"
UNKNOWN = f"not a {FORMATS} image"
NO_SIZE = "declares an empty image (a width or height of 0)"
JPEG_TRUNCATED = "truncated JPEG: the data ends before the frame header (SOF)"
JPEG_NO_FRAME = "JPEG with no frame header (SOF) before its image data"
JPEG_BAD_MARKER = ("JPEG with an unknown or unsupported marker before the "
                   "frame header")
JPEG_TOO_MANY = "JPEG with more than {} marker segments before the frame header"
PNG_NO_IHDR = "truncated PNG, or no IHDR chunk first"
PNG_TOO_WIDE = "PNG declaring a width or height above 2^31 - 1 (invalid)"
GIF_TRUNCATED = "truncated GIF: the data ends before its trailer"
GIF_BAD_BLOCK = "GIF with an unknown block type"
GIF_TOO_MANY = "GIF with more than {} blocks and short sub-blocks"
BMP_TRUNCATED = "truncated BMP header"
BMP_BAD_WIDTH = "BMP declaring a negative width"

# Refusals (see `refusals`); str.format and tf fill the same "{}"s.
SIZE = "{}x{}"
FRAMES = " x {} frames"
TOO_BIG = ("image is {} = {} pixels, above this model's limit of {} "
           "(max_pixels); send a smaller image")
UNREADABLE = "{}; send a complete " + FORMATS + " file"

# Marker segments before a JPEG's frame header: cameras write a dozen or so
# (EXIF, XMP, ICC chunks, tables). The cap bounds the scan of a hostile file
# made of tiny segments.
MAX_JPEG_SEGMENTS = 1024
_JPEG_WINDOW = 4096  # bytes read a step: fill bytes and junk skip in bulk
# GIF steps (blocks, and sub-blocks other than runs of full ones, which one
# step skips _GIF_RUN at a time): encoders write a few blocks a frame. The
# cap bounds the walk of a hostile file made of tiny blocks.
MAX_GIF_STEPS = 16384
_GIF_RUN = 256
# A GIF colour table's bytes by the flags byte before it: present when bit 7
# is set, of 2^(bits 0-2 + 1) RGB entries.
_COLOUR_TABLE_BYTES = [3 * 2 ** ((flags & 7) + 1) if flags & 0x80 else 0
                       for flags in range(256)]


class Header(NamedTuple):
  """Per image ([B] each): declared width, height and frames (GIF; else 1),
  pixels = width x height x frames, and problem ("" when readable; sizes 0
  otherwise)."""
  width: tf.Tensor
  height: tf.Tensor
  frames: tf.Tensor
  pixels: tf.Tensor
  problem: tf.Tensor


def _bytes(data, pos, count):
  """`count` bytes of `data` from `pos` as int64, zero-padded past its end."""
  start = tf.minimum(pos, tf.cast(tf.strings.length(data), tf.int64))
  raw = tf.strings.substr(data, start, tf.constant(count, tf.int64))
  return tf.cast(tf.io.decode_raw(raw, tf.uint8, fixed_length=count),
                 tf.int64)


def _be(b, i, size):
  value = tf.constant(0, tf.int64)
  for k in range(size):
    value = value * 256 + b[i + k]
  return value


def _le(b, i, size):
  value = tf.constant(0, tf.int64)
  for k in reversed(range(size)):
    value = value * 256 + b[i + k]
  return value


def _any(value, options):
  return tf.reduce_any(tf.equal(value, tf.constant(options, tf.int64)))


def _checked(width, height, frames, problem=None):
  """Sizes, or NO_SIZE when one is 0; `problem` (a string tensor) wins."""
  problem = tf.constant("") if problem is None else problem
  problem = tf.where((problem == "") & ((width <= 0) | (height <= 0)),
                     NO_SIZE, problem)
  readable = problem == ""
  zero = tf.constant(0, tf.int64)
  return (tf.where(readable, width, zero), tf.where(readable, height, zero),
          tf.where(readable, frames, zero), problem)


def _png(data, n, head, active):
  del data, active
  readable = (n >= 24) & tf.reduce_all(
      tf.equal(head[12:16], tf.constant(list(b"IHDR"), tf.int64)))
  width, height = _be(head, 16, 4), _be(head, 20, 4)
  problem = tf.where(readable, tf.where(
      (width >= 2 ** 31) | (height >= 2 ** 31), PNG_TOO_WIDE, ""),
      PNG_NO_IHDR)
  return _checked(width, height, tf.constant(1, tf.int64), problem)


def _bmp(data, n, head, active):
  del data, active
  width, height = _le(head, 18, 4), _le(head, 22, 4)
  width = tf.where(width >= 2 ** 31, width - 2 ** 32, width)  # int32 fields
  height = tf.where(height >= 2 ** 31, height - 2 ** 32, height)
  problem = tf.where(n < 26, BMP_TRUNCATED,
                     tf.where(width < 0, BMP_BAD_WIDTH, ""))
  # A negative height is a top-down image of |height| rows.
  return _checked(width, tf.abs(height), tf.constant(1, tf.int64), problem)


def _select(cases, default):
  """The value of the first true condition of [(condition, value)], else
  `default`."""
  result = tf.convert_to_tensor(default)
  for condition, value in reversed(cases):
    result = tf.where(condition, tf.convert_to_tensor(value, result.dtype),
                      result)
  return result


def _jpeg(data, n, head, active):
  """Walks the marker segments after SOI to the first frame header (SOFn),
  as libjpeg reads them: junk and fill bytes before a marker are skipped,
  RSTn and TEM have no length, DHT (C4), JPG (C8) and DAC (CC) are not
  frames; a marker libjpeg refuses there is a problem."""
  del head
  window = _JPEG_WINDOW
  index = tf.range(window - 1, dtype=tf.int64)
  running, done = tf.constant(""), tf.constant("done")

  def step(pos, segments, width, height, status):
    del width, height, status  # read anew from each step's window
    b = _bytes(data, pos, window)
    valid = tf.clip_by_value(n - pos, 0, window)
    # libjpeg's next_marker: an FF followed by anything but 00 or FF.
    is_marker = ((b[:-1] == 0xFF) & (b[1:] != 0) & (b[1:] != 0xFF)
                 & (index + 1 < valid))
    found = tf.reduce_any(is_marker)
    first = tf.argmax(tf.cast(is_marker, tf.int32), output_type=tf.int64)
    here = found & tf.equal(first, 0)  # else: skip to the marker first
    marker = b[1]
    sof = ((marker >= 0xC0) & (marker <= 0xCF)
           & ~_any(marker, [0xC4, 0xC8, 0xCC]))
    bare = ((marker >= 0xD0) & (marker <= 0xD7)) | tf.equal(marker, 0x01)
    segment = _any(marker, [0xC4, 0xCC, 0xDB, 0xDC, 0xDD, 0xFE]) | (
        (marker >= 0xE0) & (marker <= 0xEF))
    segments += tf.cast(here, tf.int64)
    status = _select([
        (~found & (valid < window), JPEG_TRUNCATED),
        (segments > MAX_JPEG_SEGMENTS,
         JPEG_TOO_MANY.format(MAX_JPEG_SEGMENTS)),
        (~here, running),
        (sof & (valid < 9), JPEG_TRUNCATED),
        (sof, done),
        (bare, running),
        (_any(marker, [0xD8, 0xD9, 0xDA]), JPEG_NO_FRAME),  # SOI, EOI, SOS
        (~segment, JPEG_BAD_MARKER),
        (valid < 4, JPEG_TRUNCATED)], running)
    # A length below 2 skips only itself, as libjpeg's skip_variable does.
    advance = _select([(~found, window - 1), (~here, first), (bare, 2)],
                      2 + tf.maximum(_be(b, 2, 2), 2))
    # SOFn: FF Cn, length, precision, height, width.
    return pos + advance, segments, _be(b, 7, 2), _be(b, 5, 2), status

  zero = tf.constant(0, tf.int64)
  _, _, width, height, status = tf.while_loop(
      lambda *state: tf.equal(state[-1], running), step,
      (tf.constant(2, tf.int64), zero, zero, zero,
       tf.where(active, running, done)))
  return _checked(width, height, tf.constant(1, tf.int64),
                  tf.where(tf.equal(status, done), "", status))


def _gif(data, n, head, active):
  """Logical screen size and image descriptors (frames), counted by walking
  every block and sub-block to the trailer, as giflib reads the whole file
  before TensorFlow allocates.

  One step reads a block, or a run of full (255-byte) sub-blocks, which is
  how encoders write image data, and the sub-block after it.
  """
  stride = 256  # a full sub-block: its size byte and 255 bytes
  run = tf.range(_GIF_RUN, dtype=tf.int64) * stride
  running, done = tf.constant(""), tf.constant("done")
  too_many = GIF_TOO_MANY.format(MAX_GIF_STEPS)

  def colour_table(flags):  # bytes of a global or local colour table
    return tf.gather(tf.constant(_COLOUR_TABLE_BYTES, tf.int64), flags)

  def block(pos, steps):
    """An image descriptor (2C, 9 more bytes, a local colour table, the LZW
    code size byte) or an extension (21, its label), then sub-blocks."""
    b = _bytes(data, pos, 10)
    is_frame, is_ext = tf.equal(b[0], 0x2C), tf.equal(b[0], 0x21)
    status = _select([(pos >= n, GIF_TRUNCATED), (tf.equal(b[0], 0x3B), done),
                      (is_frame & (pos + 10 > n), GIF_TRUNCATED),
                      (~is_frame & ~is_ext, GIF_BAD_BLOCK),
                      (steps > MAX_GIF_STEPS, too_many)], running)
    next_pos = pos + tf.where(is_frame, 11 + colour_table(b[9]), 2)
    frame_w = tf.where(is_frame, _le(b, 5, 2), 0)
    frame_h = tf.where(is_frame, _le(b, 7, 2), 0)
    return (next_pos, tf.constant(1, tf.int64), tf.cast(is_frame, tf.int64),
            frame_w, frame_h, status)

  def sub_blocks(pos, steps):
    """Skips the run of full sub-blocks from `pos`, and the one after it:
    a size 0 ends the chain and a block follows."""
    at = tf.minimum(pos + run, n)
    sizes = tf.io.decode_raw(tf.strings.substr(data, at, tf.ones_like(at)),
                             tf.uint8, fixed_length=1)[:, 0]
    full = (pos + run < n) & tf.equal(sizes, 255)
    length = tf.argmin(tf.cast(tf.concat([full, [False]], 0), tf.int32),
                       output_type=tf.int64)  # full sub-blocks in a row
    last = pos + length * stride
    size = tf.cast(tf.gather(tf.pad(sizes, [[0, 1]]), length), tf.int64)
    end_of_run = length < _GIF_RUN  # else: the run goes on at `last`
    status = _select([(end_of_run & (last >= n), GIF_TRUNCATED),
                      (steps > MAX_GIF_STEPS, too_many)], running)
    next_pos = tf.where(end_of_run, last + 1 + size, last)
    mode = tf.where(end_of_run & tf.equal(size, 0), 0, 1)
    zero = tf.constant(0, tf.int64)
    return next_pos, tf.cast(mode, tf.int64), zero, zero, zero, status

  def step(pos, mode, steps, frames, widest, tallest, status):
    del status
    pos, mode, frame, frame_w, frame_h, status = tf.cond(
        tf.equal(mode, 0), lambda: block(pos, steps),
        lambda: sub_blocks(pos, steps))
    return (pos, mode, steps + 1, frames + frame, tf.maximum(widest, frame_w),
            tf.maximum(tallest, frame_h), status)

  zero = tf.constant(0, tf.int64)
  start = 13 + colour_table(head[10])  # header, screen descriptor, table
  _, _, _, frames, widest, tallest, status = tf.while_loop(
      lambda *state: tf.equal(state[-1], running), step,
      (start, zero, zero, zero, zero, zero, tf.where(active, running, done)))
  problem = _select([(n < 13, GIF_TRUNCATED),
                     (tf.equal(status, done) & tf.equal(frames, 0), NO_SIZE),
                     (tf.equal(status, done), "")], status)
  # TensorFlow allocates each frame at the largest frame's size, giflib
  # holds every frame's own pixels: the screen's size at least.
  return _checked(tf.maximum(_le(head, 6, 2), widest),
                  tf.maximum(_le(head, 8, 2), tallest), frames, problem)


# As tf.io.decode_image tells the formats apart.
_READERS = ((_jpeg, b"\xff\xd8\xff"), (_png, b"\x89PNG\r\n\x1a\n"),
            (_gif, b"GIF8"), (_bmp, b"BM"))


def _one(data):
  n = tf.cast(tf.strings.length(data), tf.int64)
  head = _bytes(data, tf.constant(0, tf.int64), 32)
  # Every reader is built and the image's magic picks the answer (the other
  # loops stop at once): under tf.switch_case the loops would run as called
  # functions, which is slower. No magic has a 0 byte, so the zero padding
  # of a short file fakes none.
  zero = tf.constant(0, tf.int64)
  answer = (zero, zero, zero, tf.where(tf.equal(n, 0), EMPTY, UNKNOWN))
  for reader, magic in _READERS:
    active = tf.reduce_all(tf.equal(head[:len(magic)],
                                    tf.constant(list(magic), tf.int64)))
    answer = tuple(tf.where(active, mine, other) for mine, other in zip(
        reader(data, n, head, active), answer))
  return answer


def read(encoded):
  """Header of each encoded image in `encoded` ([B] strings)."""
  encoded = tf.convert_to_tensor(encoded, tf.string)
  width, height, frames, problem = tf.map_fn(
      _one, encoded, fn_output_signature=(tf.int64, tf.int64, tf.int64,
                                          tf.string))
  return Header(width, height, frames, width * height * frames, problem)


def _fill(template, *parts):
  """`template` with its "{}"s replaced by string tensors, elementwise."""
  pieces = template.split("{}")
  joined = [pieces[0]]
  for part, piece in zip(parts, pieces[1:]):
    joined += [part, piece]
  return tf.strings.join(joined)


def refusals(header, max_pixels):
  """[B] strings: "" for an image to decode, else why it is refused (a
  problem, or more pixels than `max_pixels`)."""
  text = tf.strings.as_string
  size = tf.strings.join([
      _fill(SIZE, text(header.width), text(header.height)),
      tf.where(header.frames > 1, _fill(FRAMES, text(header.frames)), "")])
  too_big = _fill(TOO_BIG, size, text(header.pixels),
                  text(tf.cast(max_pixels, tf.int64)))
  return tf.where(header.problem != "", _fill(UNREADABLE, header.problem),
                  tf.where(header.pixels > max_pixels, too_big, ""))


def size_text(width, height, frames=1):
  """Python twin of the size in `refusals`' message."""
  return SIZE.format(width, height) + (FRAMES.format(frames) if frames > 1
                                       else "")
