"""Text that came from outside (a data folder, a CSV, a model) made safe to
print, and the rule for which names can be labels.

Nothing here imports TensorFlow: the CLI, ingest and the gates all use it.
"""
import unicodedata

# Unicode categories that are never part of a usable label: controls (NUL,
# newline, escape, DEL, C1) and line/paragraph separators. TF Transform's
# text vocabulary drops a class name with a newline, so its images would
# train under another id; a NUL makes a second class that prints the same.
_UNUSABLE = ("Cc", "Zl", "Zp")
# Printed escaped as well: they reorder the text around them on a terminal.
_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def _shown(ch: str) -> str:
  if unicodedata.category(ch) in _UNUSABLE or ch in _BIDI:
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
  return ch


def escape(text) -> str:
  """`text` with control, separator and bidi characters written as \\xNN or
  \\uNNNN, so a name from a file can't move the cursor, colour the terminal,
  hide what follows it or start a new line. Other characters (accents, CJK,
  emoji) are kept."""
  text = str(text)
  if all(ch.isprintable() and ch not in _BIDI for ch in text):
    return text  # the common case, without a per-character lookup
  return "".join(_shown(ch) for ch in text)


def escape_lines(text) -> str:
  """escape() of each line, the line breaks kept: a multi-line message."""
  return "\n".join(escape(line) for line in str(text).split("\n"))


def label_problem(name: str, what: str = "class name") -> str:
  """Why `name` can't be a label ("" when it can): empty, '.', '..', or a
  control or line-separator character."""
  if not name:
    return f"empty {what}"
  if name in (".", ".."):
    return f"{what} '{name}' is a path component, not a name"
  bad = sorted({ch for ch in name if unicodedata.category(ch) in _UNUSABLE})
  if bad:
    shown = ", ".join(escape(ch) for ch in bad)
    return (f"{what} '{escape(name)}' contains control or line-break "
            f"characters ({shown}); rename it without them")
  return ""
