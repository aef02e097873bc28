"""VertexPusher: TFX's filesystem push, then the cloud Pusher's Vertex deploy.

TFX's `google_cloud_ai_platform.Pusher` takes no push_destination: it copies
the model into its own artifact folder and deploys that to the endpoint. Users
of this pipeline also expect `<root>/serving/<version>/` on every run (as with
the local runner, and as results.json reports), so this one component does
both, with the stock code for each and the stock custom_config keys
(SERVING_ARGS_KEY, ENABLE_VERTEX_KEY, VERTEX_REGION_KEY,
VERTEX_CONTAINER_IMAGE_URI_KEY). Nothing is deployed unless the model is
blessed and the filesystem push succeeded.
"""
from tfx.components.pusher import component as pusher_component
from tfx.components.pusher import executor as pusher_executor
from tfx.dsl.components.base import executor_spec
from tfx.extensions.google_cloud_ai_platform.pusher import \
    executor as cloud_executor
from tfx.types import artifact_utils, standard_component_specs

from components import atomic_pusher, result, tfx_internals
from components.atomic_pusher.executor import pushed_line

VERTEX_MODEL = "vertex_model"  # PushedModel custom property: the Model resource


class Executor(pusher_executor.Executor):
  """Runs the two stock executors one after the other, as separate objects.

  Composed, not inherited: each one's Do calls a zero-argument super(), which
  raises TypeError unless `self` is an instance of that very class (calling
  atomic_pusher.Executor.Do(self, ...) from a cloud executor did exactly that
  on a gs:// destination).
  """

  def Do(self, input_dict, output_dict, exec_properties):
    pushed = artifact_utils.get_single_instance(
        output_dict[standard_component_specs.PUSHED_MODEL_KEY])
    # 1. <push_destination>/<version>/, as the local Pusher does it.
    context = tfx_internals.executor_context(self)
    atomic_pusher.Executor(context).Do(input_dict, output_dict,
                                       exec_properties)
    if not pushed.get_int_custom_property("pushed"):
      return  # not blessed: nothing is deployed either
    serving_path = pushed.get_string_custom_property("pushed_destination")
    version = pushed.get_string_custom_property("pushed_version")
    # 2. The cloud Pusher: upload to Vertex, deploy to the endpoint. It records
    # the Vertex model as pushed_destination; keep the path there instead
    # (results.json reports it as pushed_path).
    cloud_executor.Executor(context).Do(input_dict, output_dict,
                                        exec_properties)
    pushed.set_string_custom_property(
        VERTEX_MODEL, pushed.get_string_custom_property("pushed_destination"))
    tfx_internals.mark_pushed(self, pushed, pushed_destination=serving_path,
                              pushed_version=version)
    result.record(pushed, f"{pushed_line(pushed)}, deployed to Vertex as "
                  f"{pushed.get_string_custom_property(VERTEX_MODEL)}")


class VertexPusher(pusher_component.Pusher):
  """Pusher(push_destination=..., custom_config={Vertex serving settings})."""

  EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)
