"""Training (Keras 3 on TensorFlow): the only room of the package that imports TensorFlow.

It runs in a Python process of its own, never inside QGIS (``make train``, the ``trainmodel``
algorithm's child process, the model card's convergence runs). Its data comes from
:mod:`..datasets`; what QGIS imports never reaches in here (test/test_rooms.py).

* :mod:`.mixture_layers`, :mod:`.network_tf`: the Keras mixture head, loss and network;
* :mod:`.train`: ``make train``, the bundled model; :mod:`.finetune`: training on prepared data;
* :mod:`.seed_runs`: the short trainings of the convergence check.
"""
