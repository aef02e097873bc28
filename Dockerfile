# The pipeline image for Vertex AI: it runs every pipeline step, every Dataflow
# worker (as the Beam SDK container: the TFX image's entrypoint is Beam's boot)
# and every training replica. The DAG names its code by import path
# (pipeline.trainer_module.run_fn, pipeline.transform_module.preprocessing_fn,
# the custom components' executors), so the installed project is what runs: no module
# files are packaged or uploaded at run time.
#
#   docker build -t REGION-docker.pkg.dev/PROJECT/REPO/resizer:TAG .
#   docker push REGION-docker.pkg.dev/PROJECT/REPO/resizer:TAG
FROM gcr.io/tfx-oss-public/tfx:1.16.0
# The commit the model card names (git is not in the image):
#   docker build --build-arg PIPELINE_COMMIT=$(git rev-parse HEAD) ...
ARG PIPELINE_COMMIT=unknown
ENV PIPELINE_COMMIT=$PIPELINE_COMMIT

WORKDIR /pipeline
COPY setup.py ./
COPY pipeline/ pipeline/
COPY components/ components/
COPY tasks/ tasks/
COPY trainer/ trainer/
COPY gate/ gate/
COPY schema/ schema/
# --no-deps keeps the image's own TFX 1.16 stack on Python 3.10 (tf_keras,
# pillow, and kfp 2.5 with the kfp-pipeline-spec 0.2.2 it needs, where setup.py
# pins the venv's 0.3.0); then what the image lacks. The import check fails the
# build if a dependency is missing. The sources stay in /pipeline for
# --dataflow-setup-file /pipeline/setup.py.
RUN python -m pip install --no-cache-dir --no-deps . \
    && python -m pip install --no-cache-dir "matplotlib==3.9.2" \
    && python -c "import pipeline.pipeline, pipeline.trainer_module, pipeline.transform_module, tasks.classification, tasks.regression, gate.tfma_metric, components.vertex_pusher, components.image_example_gen.vertex_driver, components.results_report.model_card"
