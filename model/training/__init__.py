"""Training-time code (Keras 3 on TensorFlow).

This is the only part of the package that imports TensorFlow, and only in its
submodules (e.g. :mod:`.mixture_layers`), never at package import time, so the
NumPy inference side and QGIS processes never load TensorFlow.
"""
