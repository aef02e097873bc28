"""ImageExampleGen's executor: TFX's ExampleGen steps around the ingest
library (ingest.py, report.py) and its Beam transform (decode_transform.py).
"""
import logging
import posixpath
from typing import Any, Dict, List, Optional

import apache_beam as beam
from tfx import types
from tfx.components.example_gen import utils as example_gen_utils
from tfx.components.example_gen import write_split
from tfx.components.example_gen.base_example_gen_executor import (
    BaseExampleGenExecutor)
from tfx.components.util import examples_utils
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import proto_utils

from components import result, tfx_internals
from components.image_example_gen import input_folder, labels_csv
from components.image_example_gen.beam_io import WriteStoredSplit
from components.image_example_gen.decode_transform import DecodeSplits
from components.image_example_gen.ingest import (CsvLabels, check_max_pixels,
                                                 split_root)
from components.image_example_gen.report import (SUMMARY_FILE, check_dataset,
                                                 summary_line, unread_files,
                                                 write_report)

MAX_PIXELS_KEY = "max_pixels"
# Labels from a CSV (labels_csv.py) instead of class folders: its path, the
# target column ("" = the only one), the task, and a hash of its content
# (so that an edited CSV is not served from the cache).
LABELS_KEY, TARGET_KEY, TASK_KEY, LABELS_HASH_KEY = (
    "labels", "target", "task", "labels_sha256")
REJECTED_KEY = "rejected"
_REPORT_DIR_KEY = "_ingest_report_dir"  # passed to the PTransform, not a spec key
_LABELS_OBJECT_KEY = "_csv_labels"      # likewise: the parsed CSV, or None


def read_csv_labels(exec_properties: Dict[str, Any]) -> Optional[labels_csv.Labels]:
  if not exec_properties.get(LABELS_KEY):
    return None
  return labels_csv.read_labels(exec_properties[LABELS_KEY],
                                exec_properties.get(TARGET_KEY) or None,
                                exec_properties.get(TASK_KEY) or "auto")


class Executor(BaseExampleGenExecutor):
  """ExampleGen executor for folders of class-labelled images."""

  def GetInputSourceToExamplePTransform(self) -> beam.PTransform:
    raise NotImplementedError(
        "ImageExampleGen decodes files in chunks: use GenerateExamplesByBeam, "
        "whose splits hold gzip members of TFRecords")

  def GenerateExamplesByBeam(self, pipeline, exec_properties):
    """Output split name -> lists of gzip members of TFRecords.

    As TFX's: input splits are kept, or the one input split is hash split
    on features.IMAGE by the output config; records come in chunks, framed
    and wrapped by the decode threads (decode_transform.py).
    """
    input_config = example_gen_pb2.Input()
    proto_utils.json_to_proto(exec_properties["input_config"], input_config)
    output_config = example_gen_pb2.Output()
    proto_utils.json_to_proto(exec_properties["output_config"], output_config)
    names = example_gen_utils.generate_output_split_names(input_config,
                                                          output_config)
    split_config = None
    if output_config.split_config.splits:
      if len(input_config.splits) != 1:
        raise ValueError("a hash split (output split_config) needs exactly "
                         "one input split")
      split_config = output_config.split_config
      inputs = [(split_root(input_config.splits[0].pattern), None)]
    else:
      inputs = [(split_root(s.pattern), s.name) for s in input_config.splits]
    return pipeline | "InputToRecord" >> DecodeSplits(  # pylint: disable=no-value-for-parameter
        exec_properties["input_base"], inputs, names,
        exec_properties[MAX_PIXELS_KEY], exec_properties[_REPORT_DIR_KEY],
        split_config, exec_properties.get(_LABELS_OBJECT_KEY))

  def Do(self, input_dict: Dict[str, List[types.Artifact]],
         output_dict: Dict[str, List[types.Artifact]],
         exec_properties: Dict[str, Any]) -> None:
    """BaseExampleGenExecutor.Do (tfx_internals' example_gen_do), writing
    splits with WriteStoredSplit, then the report and the dataset checks."""
    tfx_internals.log_startup(self, input_dict, output_dict, exec_properties)
    check_max_pixels(exec_properties[MAX_PIXELS_KEY])
    report = artifact_utils.get_single_instance(output_dict[REJECTED_KEY])
    input_base = exec_properties["input_base"]
    labels = read_csv_labels(exec_properties)
    csv_labels = labels and CsvLabels(labels, input_base)
    exec_properties = {**exec_properties, _REPORT_DIR_KEY: report.uri,
                       _LABELS_OBJECT_KEY: csv_labels}
    input_config = example_gen_pb2.Input()
    proto_utils.json_to_proto(exec_properties["input_config"], input_config)
    output_config = example_gen_pb2.Output()
    proto_utils.json_to_proto(exec_properties["output_config"], output_config)
    split_names = example_gen_utils.generate_output_split_names(
        input_config, output_config)
    examples = output_dict[standard_component_specs.EXAMPLES_KEY]
    artifact_utils.get_single_instance(examples).split_names = (
        artifact_utils.encode_split_names(split_names))
    with tfx_internals.beam_pipeline(self) as pipeline:
      splits = self.GenerateExamplesByBeam(pipeline, exec_properties)
      for name, split in splits.items():
        _ = split | f"WriteSplit[{name}]" >> WriteStoredSplit(
            artifact_utils.get_split_uri(examples, name))
    payload_format = exec_properties.get(
        standard_component_specs.OUTPUT_DATA_FORMAT_KEY)
    file_format = exec_properties.get(
        standard_component_specs.OUTPUT_FILE_FORMAT_KEY)
    for artifact in examples:
      if payload_format:
        examples_utils.set_payload_format(artifact, payload_format)
      if file_format:
        examples_utils.set_file_format(
            artifact, write_split.to_file_format_str(file_format))
    roots = [split_root(s.pattern) for s in input_config.splits]
    folders = [] if csv_labels else [
        f"{root}/{c}".lstrip("/") for root in roots
        for c in input_folder.class_folders(input_base, root)]
    unread = unread_files(input_base, {
        s.name: split_root(s.pattern) for s in input_config.splits})
    rows = [] if csv_labels is None else csv_labels.row_outcomes(
        labels, [f.path for f in input_folder.list_files(input_base, "")])
    summary = write_report(report.uri, folders, split_names, unread, rows)
    report.set_int_custom_property("seen", summary["seen"])
    report.set_int_custom_property("ingested", summary["ingested"])
    report.set_int_custom_property("rejected", summary["rejected"])
    result.record(report, summary_line(summary))
    conflicts = [d["paths"] for d in summary["duplicates"]
                 if len(d["classes"]) > 1]
    if conflicts:
      logging.warning("%d image(s) are in more than one class folder (see "
                      "'duplicates' in %s): %s", len(conflicts),
                      posixpath.join(report.uri, SUMMARY_FILE), conflicts[:5])
    check_dataset(summary, input_base, roots,
                  csv_labels.task if csv_labels else "",
                  csv=csv_labels is not None)
