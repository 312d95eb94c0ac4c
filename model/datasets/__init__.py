"""The data the model learns from: synthetic pairs, and pairs labelled from the user's layers.

Plain NumPy, shapely and pyproj: importable inside QGIS (``trainmodel`` prepares its data
here) and anywhere else. Nothing here imports TensorFlow.

* :mod:`.shapes`: the shape families (buildings, parcels, administrative units, ...);
* :mod:`.synthetic`: the seeded pair generator, its recipe and fingerprint, Monte-Carlo overlap;
* :mod:`.layer_data`: exact labels for candidate pairs of two layers, and the training-data file.
"""
