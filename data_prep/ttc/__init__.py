"""Datasets for the task-transfer-connection experiments (Fang et al. 2017): binary multi-task data.

Every loader returns a :class:`~data_prep.ttc.common.TaskData`: grayscale (or RGB) images in [0, 1]
and an ``(N, T)`` label matrix (1 positive, 0 negative, -1 not labelled for that task), split into
train / val / test.

* :func:`load_digits_tasks` -- scikit-learn's bundled digits as 5 binary tasks (no download).
* :func:`make_synthattrs` -- synthetic face attributes from :mod:`data_prep.synthfaces` with a known
  correlation structure (ground truth for the learned alphas).
* :func:`load_cifar10_tasks` -- CIFAR-10 python batches as the paper's 5 binary tasks (restricted
  unpickler).
* :func:`load_celeba_tasks` -- CelebA attributes, grayscale + histogram equalisation.

This package imports neither TensorFlow nor Keras.
"""

from data_prep.ttc.celeba import CELEBA_TABLE3_GROUPS, CELEBA_TABLE4_ATTRIBUTES, load_celeba_tasks
from data_prep.ttc.cifar import CIFAR10_TASKS, load_cifar10_tasks, restricted_load
from data_prep.ttc.common import TaskData
from data_prep.ttc.digits import DIGIT_TASKS, load_digits_tasks
from data_prep.ttc.synthattrs import SYNTH_TASKS, make_synthattrs

__all__ = [
    "CELEBA_TABLE3_GROUPS",
    "CELEBA_TABLE4_ATTRIBUTES",
    "CIFAR10_TASKS",
    "DIGIT_TASKS",
    "SYNTH_TASKS",
    "TaskData",
    "load_celeba_tasks",
    "load_cifar10_tasks",
    "load_digits_tasks",
    "make_synthattrs",
    "restricted_load",
]
