"""Relative influence of the tasks on each other: the quantity of Fang et al. 2017's Figure 4 and Table 6.

Index convention. The paper writes ``alpha^{ij}`` with i the sender and j the receiver ("the TTC factor of
W^i to task j", Algorithm 1); the code's ``alpha[i, j]`` (and every matrix returned by ``alpha_matrices()``)
is row i = receiving task, column j = sending task. So the paper's ``alpha^{ij}`` is the code's
``alpha[j, i]``.

Figure 4 plots the "relative magnitudes of influence" of the tasks on one task, and Sec. 4.3 says that after
task removal "the former TTC weights of removed tasks are partitioned by reserved tasks". Both read naturally
as each sender's *share* of a receiver's input::

    s[i, j] = alpha[i, j] / sum_k alpha[i, k]        (self included: alpha[i, i] = 1)

so the diagonal (a task's own share) changes too, and after removing tasks R, re-training and recomputing
the shares over the kept tasks, the changes of receiver i's shares add up to exactly the removed tasks'
former share ``sum_{r in R} s_before[i, r]`` (the shares before and after both sum to 1).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def influence_shares(alpha) -> np.ndarray:
    """Shares ``s[..., i, j] = alpha[..., i, j] / sum_k alpha[..., i, k]`` (rows = receivers sum to 1).

    Args:
        alpha: mixing matrices ``(..., T, T)`` with non-negative entries and positive row sums
            (TTC: ``alpha[i, i] = 1``; disconnected entries 0).
    Raises:
        ValueError: on a non-square last pair of axes, negative entries or a zero row.
    """
    a = np.asarray(alpha, dtype=np.float64)
    if a.ndim < 2 or a.shape[-1] != a.shape[-2]:
        raise ValueError(f"alpha must end with a square (T, T) pair of axes, got shape {a.shape}")
    if (a < 0).any():
        raise ValueError("alpha must be non-negative to be read as shares (cross-stitch weights may not be)")
    total = a.sum(axis=-1, keepdims=True)
    if (total <= 0).any():
        raise ValueError("every receiving task needs a positive total alpha")
    return a / total


def removal_share_change(alpha_before, alpha_after, keep: Sequence[int]) -> dict[str, np.ndarray]:
    """Share changes after task removal (Table 6 as the paper's text describes it).

    Args:
        alpha_before: ``(T, T)`` matrix of the full model (receiver rows).
        alpha_after: ``(K, K)`` matrix of the reduced model, kept tasks in the order ``keep``.
        keep: indices (into the full model) of the K kept tasks.
    Returns:
        ``share_before`` (K, K: the kept tasks' shares in the full model), ``share_after`` (K, K),
        ``change`` = after - before (receiver rows), and ``removed_share`` (K,): each kept receiver's former
        share of the removed tasks; ``change.sum(axis=1) == removed_share`` up to rounding.
    """
    before = influence_shares(alpha_before)
    keep = [int(k) for k in keep]
    if len(set(keep)) != len(keep) or not keep:
        raise ValueError(f"keep must list distinct task indices, got {keep}")
    after = influence_shares(alpha_after)
    if after.shape != (len(keep), len(keep)):
        raise ValueError(f"alpha_after must be ({len(keep)}, {len(keep)}), got {after.shape}")
    kept_before = before[np.ix_(keep, keep)]
    removed = [t for t in range(before.shape[0]) if t not in keep]
    return dict(
        share_before=kept_before,
        share_after=after,
        change=after - kept_before,
        removed_share=before[np.ix_(keep, removed)].sum(axis=1),
    )
