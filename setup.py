"""The learnable-resizer TFX pipeline, installed into the venv and the image.

Install with the pinned set:  pip install --ignore-requires-python -c constraints.txt -e .
"""
from setuptools import find_packages, setup

setup(
    name="learnable-resizer-pipeline",
    version="0.1.0",
    description="TFX pipeline: learned image resizer vs bilinear, gated push",
    python_requires=">=3.10",
    packages=find_packages(include=["pipeline*", "components*", "tasks*",
                                    "trainer*", "gate*", "schema*"]),
    # The model card's Jinja2 templates travel with the package (and image).
    package_data={"schema": ["*.pbtxt"],
                  "components.results_report": ["templates/*.j2"]},
    install_requires=[
        "tfx==1.16.0",
        "keras==3.6.0",
        "tf-keras==2.16.0",
        "kfp-pipeline-spec==0.3.0",
        "pillow",
        "matplotlib==3.9.2",
        "jinja2",  # the model card; pinned by constraints.txt, in TFX's set
    ],
    extras_require={"test": ["pytest", "pytest-xdist", "ruff==0.12.12"]},
    entry_points={"console_scripts": [
        "resizer-pipeline=pipeline.cli:main",
    ]},
)
