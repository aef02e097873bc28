"""Feature names shared by ExampleGen, the schema, Transform and serving."""

# Raw tf.Example features written by components/image_example_gen.
IMAGE = "image/encoded"      # the file's bytes (see NORMALIZED)
LABEL = "image/class"        # class name (folder, or the labels CSV)
TARGET = "image/target"      # a numeric target, in its own units (CSV)
HEIGHT = "image/height"
WIDTH = "image/width"
FORMAT = "image/format"      # "jpeg" | "png"
FILENAME = "image/filename"  # path relative to the data folder
# Why IMAGE is a PNG re-encoding of the upright RGB image rather than the
# file: "exif_orientation=6" (tf.io.decode_image ignores EXIF),
# "converted_from=webp" (webp, bmp, gif: first frame, tiff), or both joined
# by ",". "" = the file.
NORMALIZED = "image/normalized"

# Transformed features (the Trainer's input).
PIXELS = "pixels"            # uint8 RGB at the resizer input size, raw bytes
LABEL_ID = "label"           # int64 index into the LABEL_VOCAB vocabulary
LABEL_VOCAB = "label"        # vocabulary file name, exported with the model

# Regression (transformed): the target normalised as the model learns it, the
# target in its own units (what TFMA scores), and the normalisation constants
# (the same for every example) that turn predictions back into target units.
TARGET_NORM = "target"
TARGET_RAW = "target_raw"
TARGET_MEAN = "target_mean"
TARGET_STD = "target_std"
