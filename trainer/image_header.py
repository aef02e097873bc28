"""How many pixels decoding an image would allocate, read from its header
in-graph, without decoding it.

The served model decodes with tf.io.decode_image (JPEG, PNG, GIF, BMP), which
allocates the size the header declares: a tiny file can declare a huge
image (a decompression bomb). `read` gives each image's declared size, or a
problem when its header can't be read; it never raises, whatever the bytes.
`refusals` turns that into one error per image against a pixel limit.
Pure TensorFlow ops, so a served model carries it without project code.

A batch is read at once: a JPEG or GIF walk steps through all its images
together, a few bytes of each a step; PNG and BMP sizes sit at fixed
offsets.
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
# Junk between JPEG segments is looked through this many bytes a step, only
# in the images that have some.
_JPEG_JUNK_WINDOW = 4096
# GIF steps (blocks, and sub-blocks other than runs of full ones, which one
# step skips _GIF_RUN at a time): encoders write a few blocks a frame. The
# cap bounds the walk of a hostile file made of tiny blocks.
MAX_GIF_STEPS = 16384
_GIF_RUN = 256
_GIF_STRIDE = 256  # a full sub-block: its size byte and 255 bytes
# A GIF colour table's bytes by the flags byte before it: present when bit 7
# is set, of 2^(bits 0-2 + 1) RGB entries.
_COLOUR_TABLE_BYTES = [3 * 2 ** ((flags & 7) + 1) if flags & 0x80 else 0
                       for flags in range(256)]


# In the graph a problem is its index here (0: none); a walk's state is one
# of these, or negative while it goes on.
_PROBLEMS = ("", EMPTY, UNKNOWN, NO_SIZE, JPEG_TRUNCATED, JPEG_NO_FRAME,
             JPEG_BAD_MARKER, JPEG_TOO_MANY.format(MAX_JPEG_SEGMENTS),
             PNG_NO_IHDR, PNG_TOO_WIDE, GIF_TRUNCATED, GIF_BAD_BLOCK,
             GIF_TOO_MANY.format(MAX_GIF_STEPS), BMP_TRUNCATED,
             BMP_BAD_WIDTH)
_CODE = {problem: code for code, problem in enumerate(_PROBLEMS)}
_DONE, _RUNNING = _CODE[""], -1
# A GIF block by its first byte: an image descriptor (2C) or an extension
# (21) goes on, the trailer (3B) ends the GIF.
_GIF_BLOCKS = [_RUNNING if byte in (0x2C, 0x21) else
               _DONE if byte == 0x3B else _CODE[GIF_BAD_BLOCK]
               for byte in range(256)]
# What a GIF step reads, from where it starts: the size bytes of _GIF_RUN
# full sub-blocks in a row, then bytes 1 to 9 of a block; and the fields of
# a block there: its first byte, an image descriptor's width, height and
# flags.
_GIF_READ = [k * _GIF_STRIDE for k in range(_GIF_RUN)] + list(range(1, 10))
_GIF_BLOCK_FIELDS = [(_GIF_READ.index(offset), size, False)
                     for offset, size in ((0, 1), (5, 2), (7, 2), (9, 1))]


def _jpeg_marker(marker):
  """(bytes its step needs, status after it, whether a length follows) of a
  marker before the frame header, as libjpeg reads it."""
  if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
    return 9, _DONE, 0  # SOFn: FF Cn, length, precision, height, width
  if 0xD0 <= marker <= 0xD7 or marker == 0x01:  # RSTn, TEM
    return 2, _RUNNING, 0
  if marker in (0xD8, 0xD9, 0xDA):  # SOI, EOI, SOS
    return 2, _CODE[JPEG_NO_FRAME], 0
  # DHT (C4), DAC (CC) and the others libjpeg skips; JPG (C8) is refused.
  if marker in (0xC4, 0xCC, 0xDB, 0xDC, 0xDD, 0xFE) or 0xE0 <= marker <= 0xEF:
    return 4, _RUNNING, 1
  return 2, _CODE[JPEG_BAD_MARKER], 0


_JPEG_MARKERS = tuple(zip(*map(_jpeg_marker, range(256))))
# libjpeg's next_marker: a marker is an FF followed by anything but 00 or
# FF (so the zero padding past the data ends none).
_ENDS_MARKER = [0 < byte < 0xFF for byte in range(256)]


class Header(NamedTuple):
  """Per image ([B] each): declared width, height and frames (GIF; else 1),
  pixels = width x height x frames, and problem ("" when readable; sizes 0
  otherwise)."""
  width: tf.Tensor
  height: tf.Tensor
  frames: tf.Tensor
  pixels: tf.Tensor
  problem: tf.Tensor


def _full(like, value):
  """int64 `value`s in the shape of `like`."""
  return tf.fill(tf.shape(like), tf.constant(value, tf.int64))


def _bytes(data, n, pos, count):
  """[B, count] int64: `count` bytes of each of `data` ([B] strings of
  lengths `n`) from `pos`, zero-padded past its end."""
  start = tf.minimum(pos, n)  # Substr refuses a start past the end
  raw = tf.strings.substr(data, start, _full(start, count))
  return tf.cast(tf.io.decode_raw(raw, tf.uint8, fixed_length=count),
                 tf.int64)


def _fields(b, fields):
  """[B, len(fields)]: the unsigned integers of [B, W] bytes `b`, one per
  (offset, size, big-endian?) field, in one matrix product."""
  weights = [[0] * len(fields) for _ in range(b.shape[1])]
  for j, (offset, size, big) in enumerate(fields):
    for k in range(size):
      weights[offset + k][j] = 256 ** (size - 1 - k if big else k)
  return tf.matmul(b, tf.constant(weights, tf.int64))


def _select(cases, default):
  """The value of the first true condition of [(condition, value)], else
  `default`, elementwise."""
  result = tf.convert_to_tensor(default, tf.int64)
  for condition, value in reversed(cases):
    result = tf.where(condition, tf.convert_to_tensor(value, tf.int64),
                      result)
  return result


def _subset(mask):
  """Indices ([K]) of the true elements of `mask` ([B])."""
  return tf.where(mask)[:, 0]


def _spread(indices, values, like):
  """[B] with `values` ([K]) at `indices`, 0 elsewhere; `like` is [B]."""
  return tf.scatter_nd(indices[:, None], values, tf.shape(like, tf.int64))


def _png(n, fields):
  width, height = fields["png width"], fields["png height"]
  problem = _select([
      ((n < 24) | tf.not_equal(fields["ihdr"], int.from_bytes(b"IHDR", "big")),
       _CODE[PNG_NO_IHDR]),
      ((width >= 2 ** 31) | (height >= 2 ** 31), _CODE[PNG_TOO_WIDE])], _DONE)
  return width, height, _full(n, 1), problem


def _bmp(n, fields):
  width, height = fields["bmp width"], fields["bmp height"]
  width = tf.where(width >= 2 ** 31, width - 2 ** 32, width)  # int32 fields
  height = tf.where(height >= 2 ** 31, height - 2 ** 32, height)
  problem = _select([(n < 26, _CODE[BMP_TRUNCATED]),
                     (width < 0, _CODE[BMP_BAD_WIDTH])], _DONE)
  # A negative height is a top-down image of |height| rows.
  return width, tf.abs(height), _full(n, 1), problem


def _skip_junk(data, n, pos, junk):
  """[B]: how far each `junk` image's next marker is from `pos`, at most
  _JPEG_JUNK_WINDOW - 1 bytes (to look on from there), or -1 when it has
  none before its end. Only those images' windows are read (0 for the
  others)."""
  window = _JPEG_JUNK_WINDOW
  some = _subset(junk)
  start = tf.minimum(pos, n)
  raw = tf.gather(tf.strings.substr(data, start, _select(
      [(junk, window)], 0)), some)
  b = tf.cast(tf.io.decode_raw(raw, tf.uint8, fixed_length=window), tf.int32)
  is_marker = tf.equal(b[:, :-1], 0xFF) & tf.gather(
      tf.constant(_ENDS_MARKER), b[:, 1:])
  first = tf.argmax(tf.cast(is_marker, tf.int32), 1, output_type=tf.int64)
  skip = _select([(tf.reduce_any(is_marker, 1), first),
                  (tf.gather(n - start, some) < window, -1)], window - 1)
  return _spread(some, skip, pos)


def _jpeg(data, n, active):
  """Walks the marker segments after SOI to the first frame header (SOFn),
  as libjpeg reads them: junk and fill bytes before a marker are skipped,
  RSTn and TEM have no length, DHT (C4), JPG (C8) and DAC (CC) are not
  frames; a marker libjpeg refuses there is a problem.

  The inner loop reads a marker at a time; an image with none where one
  should be waits there until the outer loop has skipped its junk."""
  junk, truncated = _RUNNING - 1, _CODE[JPEG_TRUNCATED]

  def marker_step(pos, segments, status):
    """Reads the marker at `pos` (FF, marker, a segment's length); leaves
    `pos` at the frame header or where the junk starts."""
    # Made here: a loop carries what it captures through every step.
    needs, outcomes, has_length = (tf.constant(column, tf.int64)
                                   for column in _JPEG_MARKERS)
    running = tf.equal(status, _RUNNING)
    b = _bytes(data, n, pos, 4)
    marker = b[:, 1]
    here = tf.equal(b[:, 0], 0xFF) & tf.gather(tf.constant(_ENDS_MARKER),
                                               marker)
    segments += tf.cast(here, tf.int64)
    status = tf.where(running, _select([
        (~here, junk),
        (segments > MAX_JPEG_SEGMENTS,
         _CODE[JPEG_TOO_MANY.format(MAX_JPEG_SEGMENTS)]),
        (n - pos < tf.gather(needs, marker), truncated)],
        tf.gather(outcomes, marker)), status)
    # A length below 2 skips only itself, as libjpeg's skip_variable does.
    advance = 2 + tf.gather(has_length, marker) * tf.maximum(
        b[:, 2] * 256 + b[:, 3], 2)
    return (tf.where(tf.equal(status, _RUNNING), pos + advance, pos),
            segments, status)

  def walk_then_skip(pos, segments, status):
    pos, segments, status = tf.while_loop(
        lambda *state: tf.reduce_any(tf.equal(state[-1], _RUNNING)),
        marker_step, (pos, segments, status))
    in_junk = tf.equal(status, junk)
    skip = _skip_junk(data, n, pos, in_junk)
    return (pos + tf.maximum(skip, 0), segments, tf.where(in_junk, _select(
        [(skip < 0, truncated)], _RUNNING), status))

  zero = _full(n, 0)
  pos, _, status = tf.while_loop(
      lambda *state: tf.reduce_any(tf.equal(state[-1], _RUNNING)),
      walk_then_skip,
      (zero + 2, zero, _select([(active, _RUNNING)], zero)))
  # SOFn: FF Cn, length, precision, height, width.
  size = _fields(_bytes(data, n, pos, 9), [(5, 2, True), (7, 2, True)])
  return size[:, 1], size[:, 0], _full(n, 1), status


def _gif(data, n, flags, screen_width, screen_height):
  """Logical screen size and image descriptors (frames), counted by walking
  every block and sub-block to the trailer, as giflib reads the whole file
  before TensorFlow allocates.

  One step reads a block, or a run of full (255-byte) sub-blocks, which is
  how encoders write image data, and the sub-block after it. `data` holds
  GIFs only: every step reads _GIF_RUN bytes of each.
  """
  too_many = _CODE[GIF_TOO_MANY.format(MAX_GIF_STEPS)]
  truncated = _CODE[GIF_TRUNCATED]
  # While a GIF is walked, its status says what the next step reads.
  at_block, in_chain = _RUNNING, _RUNNING - 1
  data = data[:, None]  # each step reads many single bytes of each

  def step(steps, pos, frames, widest, tallest, status):
    # Made here, as in _jpeg's loop.
    colour_tables = tf.constant(_COLOUR_TABLE_BYTES, tf.int64)
    block_kinds = tf.constant(_GIF_BLOCKS, tf.int64)
    running = status < 0
    # The size bytes of a run of full sub-blocks from `pos`, then bytes 1
    # to 9 of a block: past the data they read 0.
    at = tf.minimum(pos[:, None] + tf.constant(_GIF_READ, tf.int64),
                    n[:, None])
    b = tf.cast(tf.squeeze(tf.io.decode_raw(tf.strings.substr(
        data, at, _full(at, 1)), tf.uint8, fixed_length=1), 2), tf.int64)
    kind, frame_w, frame_h, table_flags = tf.unstack(
        _fields(b, _GIF_BLOCK_FIELDS), axis=1)
    over = steps > MAX_GIF_STEPS

    # A block: an image descriptor (2C, 9 more bytes, a local colour table,
    # the LZW code size byte) or an extension (21, its label), then
    # sub-blocks; 3B ends the GIF.
    is_frame = tf.equal(kind, 0x2C)
    kind_status = tf.gather(block_kinds, kind)
    block_status = _select([
        ((pos >= n) | (is_frame & (pos + 10 > n)), truncated),
        (tf.not_equal(kind_status, _RUNNING), kind_status),
        (over, too_many)], in_chain)
    block_end = pos + tf.where(
        is_frame, 11 + tf.gather(colour_tables, table_flags), 2)

    # Sub-blocks: skips the run of full ones from `pos`, and the one after
    # it; a size 0 ends the chain and a block follows.
    full = tf.cast(tf.equal(b, 255), tf.int32) * tf.constant(
        [1] * _GIF_RUN + [0] * (len(_GIF_READ) - _GIF_RUN), tf.int32)
    length = tf.argmin(full, 1, output_type=tf.int64)  # full ones in a row
    last = pos + length * _GIF_STRIDE
    last_size = tf.gather(b, tf.minimum(length, _GIF_RUN - 1), batch_dims=1)
    end_of_run = length < _GIF_RUN  # else: the run goes on at `last`
    chain_status = _select([(end_of_run & (last >= n), truncated),
                            (over, too_many),
                            (end_of_run & tf.equal(last_size, 0), at_block)],
                           in_chain)
    chain_end = tf.where(end_of_run, last + 1 + last_size, last)

    block = tf.equal(status, at_block)
    frame = block & is_frame
    return (steps + 1, tf.where(block, block_end, chain_end),
            frames + tf.cast(frame, tf.int64),
            tf.where(frame, tf.maximum(widest, frame_w), widest),
            tf.where(frame, tf.maximum(tallest, frame_h), tallest),
            tf.where(running, tf.where(block, block_status, chain_status),
                     status))

  zero = _full(n, 0)
  # Past the header, the screen descriptor and the global colour table.
  start = 13 + tf.gather(tf.constant(_COLOUR_TABLE_BYTES, tf.int64), flags)
  _, _, frames, widest, tallest, status = tf.while_loop(
      lambda *state: tf.reduce_any(state[-1] < 0), step,
      (tf.constant(0, tf.int64), start, zero, zero, zero, zero + at_block))
  done = tf.equal(status, _DONE)
  problem = _select([(n < 13, truncated),
                     (done & tf.equal(frames, 0), _CODE[NO_SIZE]),
                     (done, _DONE)], status)
  # TensorFlow allocates each frame at the largest frame's size, giflib
  # holds every frame's own pixels: the screen's size at least.
  return (tf.maximum(screen_width, widest),
          tf.maximum(screen_height, tallest), frames, problem)


# As tf.io.decode_image tells the formats apart. No magic has a 0 byte, so
# the zero padding of a short file fakes none.
_MAGIC = {"JPEG": b"\xff\xd8\xff", "PNG": b"\x89PNG\r\n\x1a\n", "GIF": b"GIF8",
          "BMP": b"BM"}
# The fields read at fixed offsets of the first 32 bytes.
_HEAD = {"png width": (16, 4, True), "png height": (20, 4, True),
         "ihdr": (12, 4, True), "bmp width": (18, 4, False),
         "bmp height": (22, 4, False), "gif width": (6, 2, False),
         "gif height": (8, 2, False)}


def read(encoded):
  """Header of each encoded image in `encoded` ([B] strings)."""
  encoded = tf.convert_to_tensor(encoded, tf.string)
  n = tf.cast(tf.strings.length(encoded), tf.int64)
  zero = _full(n, 0)
  head = _bytes(encoded, n, zero, 32)
  values = _fields(head, list(_HEAD.values()))
  fields = {name: values[:, i] for i, name in enumerate(_HEAD)}
  is_format = {name: tf.reduce_all(tf.equal(
      head[:, :len(magic)], tf.constant(list(magic), tf.int64)), 1)
               for name, magic in _MAGIC.items()}

  def walk_gifs():
    """The GIFs are walked on their own: a step reads much of each."""
    gifs = _subset(is_format["GIF"])
    return tuple(_spread(gifs, value, n) for value in _gif(*(
        tf.gather(value, gifs) for value in (
            encoded, n, head[:, 10], fields["gif width"],
            fields["gif height"]))))

  gif = tf.cond(tf.reduce_any(is_format["GIF"]), walk_gifs,
                lambda: (zero,) * 4)
  answers = {"JPEG": _jpeg(encoded, n, is_format["JPEG"]),
             "PNG": _png(n, fields), "GIF": gif, "BMP": _bmp(n, fields)}
  unknown = _select([(tf.equal(n, 0), _CODE[EMPTY])], _CODE[UNKNOWN])
  width, height, frames, problem = (
      _select([(is_format[name], value[i]) for name, value in answers.items()
               ], default)
      for i, default in enumerate((zero, zero, zero, unknown)))
  problem = _select([(tf.equal(problem, _DONE) & ((width <= 0) | (height <= 0)),
                      _CODE[NO_SIZE])], problem)
  readable = tf.equal(problem, _DONE)
  width, height, frames = (tf.where(readable, value, zero)
                           for value in (width, height, frames))
  return Header(width, height, frames, width * height * frames,
                tf.gather(tf.constant(_PROBLEMS), problem))


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
