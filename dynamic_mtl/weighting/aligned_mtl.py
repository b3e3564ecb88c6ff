"""Aligned-MTL: independent component alignment (Senushkin et al., CVPR 2023)."""

from __future__ import annotations

import tensorflow as tf

from dynamic_mtl.weighting.base import register_weighting
from dynamic_mtl.weighting.gradient_base import GradientWeighting


def alignment_matrix(gram):
    """``B = sqrt(lambda_min) V Lambda^-1/2 V^T`` from ``M = G G^T = V Lambda V^T``.

    The aligned task gradients ``B G`` have Gram matrix ``lambda_min V V^T``: all their
    non-zero singular values equal ``sqrt(lambda_min)`` (condition number 1, the paper's
    Eq. 8-10). Eigenvalues below ``max(lambda) T eps`` count as zero (rank-deficient G).
    """
    T = gram.shape[0]
    eigenvalues, vectors = tf.linalg.eigh(gram)
    tolerance = tf.reduce_max(eigenvalues) * T * 1.1920929e-07
    kept = eigenvalues > tolerance
    smallest = tf.reduce_min(tf.where(kept, eigenvalues, tf.reduce_max(eigenvalues)))
    inverse_root = tf.where(kept, 1.0 / tf.sqrt(tf.where(kept, eigenvalues, 1.0)), 0.0)
    return tf.sqrt(tf.maximum(smallest, 0.0)) * tf.matmul(vectors * inverse_root[None, :], vectors, transpose_b=True)


@register_weighting("aligned_mtl")
class AlignedMTLWeighting(GradientWeighting):
    """Aligned-MTL (Senushkin et al. 2023, Algorithm 1): ``d = 1^T B G`` with ``B`` from the eigen
    decomposition of the Gram matrix (``alignment_matrix``), i.e. the sum of the aligned task
    gradients (the task preferences w of the paper all 1, as the authors' and LibMTL's code).

    The paper's Aligned-MTL-UB variant aligns the gradients of the shared representation; the
    model's hook gives those of the shared parameters (the paper's full Aligned-MTL).
    ``task_weights = B 1``. No options.
    """

    def coefficients(self, gram, task_losses):
        return tf.reduce_sum(alignment_matrix(gram), axis=1)
