"""The one packaging setting pyproject.toml cannot say: the package list.

pyproject's ``packages.find`` only finds packages by their folder names, and the data package
``ladder_datasets`` has no folder of that name: ``package-dir`` in pyproject.toml maps it to the
top-level ``datasets/`` (which must never get an ``__init__.py``, or it would shadow Hugging
Face ``datasets``). Everything else (metadata, dependencies, package data) is in pyproject.toml.
"""

from setuptools import find_namespace_packages, setup

setup(
    packages=[
        *find_namespace_packages(include=["assistant*", "evaluation*", "finetune*", "ui*"]),
        "ladder_datasets",
    ]
)
