"""Training tests: TensorFlow, in a pytest process of their own without QGIS.

TensorFlow and QGIS link different libprotobuf builds and cannot share a process
(exitQgis segfaults), so `make test` runs this folder with `-p no:pytest_qgis`.
"""

import os
import sys

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

if "qgis.core" in sys.modules:
    pytest.exit("test/model/training must run without QGIS: pytest -p no:pytest_qgis test/model/training", returncode=4)

import tensorflow as tf  # noqa: E402

# Two cores on CI; only possible before TensorFlow's runtime starts.
tf.config.threading.set_intra_op_parallelism_threads(2)
tf.config.threading.set_inter_op_parallelism_threads(1)
