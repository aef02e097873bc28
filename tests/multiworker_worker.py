"""One worker of the two-process MultiWorkerMirroredStrategy test.

usage: python multiworker_worker.py INDEX PORT0 PORT1 OUT_DIR
Trains the learned-resizer model a few steps with the strategy the Trainer
would choose from TF_CONFIG, saves it (only the chief's copy lands in OUT_DIR)
and writes its final weights for comparison.
"""
import json
import os
import sys
import tempfile

index, port0, port1, out = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
os.environ["TF_CONFIG"] = json.dumps({
    "cluster": {"worker": [f"localhost:{port0}", f"localhost:{port1}"]},
    "task": {"type": "worker", "index": index}})

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import tasks  # noqa: E402
from trainer import distribution  # noqa: E402
from trainer.keras_lib import keras  # noqa: E402
from trainer.model import ModelSpec, build_model  # noqa: E402

strategy = distribution.choose_strategy("auto")
with strategy.scope():
  model = build_model(ModelSpec(head=tasks.get("classification").head(2),
                                input_size=32, target_size=16))
  model.compile(keras.optimizers.SGD(0.05), "categorical_crossentropy")
rng = np.random.default_rng(0)  # the same data on both workers, then sharded
x = rng.uniform(0, 255, (64, 32, 32, 3)).astype("float32")
y = keras.utils.to_categorical(rng.integers(0, 2, 64), 2)
options = tf.data.Options()
options.experimental_distribute.auto_shard_policy = (
    tf.data.experimental.AutoShardPolicy.DATA)
ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(16).with_options(options)
history = model.fit(ds, epochs=2, verbose=0)

chief = distribution.is_chief(strategy)
model.save(os.path.join(out, "model") if chief else tempfile.mkdtemp(),
           save_format="tf")
np.save(os.path.join(out, f"weights_{index}.npy"),
        np.concatenate([w.ravel() for w in model.get_weights()]))
with open(os.path.join(out, f"worker_{index}.json"), "w") as f:
  json.dump({"multi_worker": isinstance(
      strategy, tf.distribute.MultiWorkerMirroredStrategy), "chief": chief,
             "replicas": strategy.num_replicas_in_sync,
             "steps": int(model.optimizer.iterations.numpy()),
             "loss": history.history["loss"]}, f)
