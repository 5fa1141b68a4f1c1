"""The complete-positivity condition and the model's health at its initial point
(docs/physics.md, "The dynamics"), checked before any work starts.

Every failure is a ``ValueError`` naming the model, the offending part and where.
"""

from __future__ import annotations

import numpy as np

from ..models.base import Model

__all__ = ["check_initial_point", "check_noise_covers_backreaction"]


def check_initial_point(model: Model, sigma: float) -> None:
    """The model must be defined and finite at its initial point z0."""
    Z = model.z0[None, :]
    if not bool(np.asarray(model.domain(Z))[0]):
        raise ValueError(
            f"model {model.name!r}: the initial point z0 = {model.z0} is outside its domain"
        )
    with np.errstate(all="ignore"):
        parts = {
            "the Hamiltonian flow {Z, H_C}": model.hamiltonian_flow(Z),
            "H_I": model.interaction_hamiltonian(Z),
            "the back-reaction operators L_j": model.backreaction_operators(Z),
            "the noise kernel": sigma * model.noise_kernel(Z),
        }
    for what, value in parts.items():
        if not np.all(np.isfinite(value)):
            raise ValueError(
                f"model {model.name!r}: {what} is not finite at the initial point "
                f"z0 = {model.z0} (e.g. a test mass placed on a point source with eps = 0)"
            )


def check_noise_covers_backreaction(
    model: Model, sigma: float, Z: np.ndarray | None = None
) -> None:
    """The complete-positivity condition ``(1 − D2 D2⁺) D1 = 0`` at the classical point Z
    (default z0).

    Every direction in which the quantum system pushes the classical one must carry noise:
    ``Σ_j (1 − σσ⁺)_{kj} L_j`` must be a multiple of the identity for every component k.
    """
    Z = model.z0[None, :] if Z is None else np.atleast_2d(Z)
    kernel = sigma * model.noise_kernel(Z)[0]  # (n, m)
    if not np.all(np.isfinite(kernel)):
        raise ValueError(f"model {model.name!r}: the noise kernel is not finite at {Z[0]}")
    n = model.n_classical
    leak = np.eye(n) - kernel @ np.linalg.pinv(kernel)  # projector on the noiseless directions
    ops = np.asarray(model.backreaction_operators(Z))[0]  # (c, d) or (c, d, d)
    residual = np.tensordot(leak[:, list(model.coupled)], ops, axes=(1, 0))  # (n, d[, d])
    if model.diagonal:
        residual = residual - residual.mean(axis=-1, keepdims=True)
    else:
        d = model.dim
        trace = np.trace(residual, axis1=-2, axis2=-1) / d
        residual = residual - trace[:, None, None] * np.eye(d)
    scale = max(1.0, float(np.max(np.abs(ops))))
    bad = np.max(np.abs(residual.reshape(n, -1)), axis=1) > 1e-10 * scale
    if np.any(bad):
        labels = [model.coord_labels[k] for k in np.flatnonzero(bad)]
        raise ValueError(
            f"model {model.name!r}: the noise kernel leaves the back-reaction direction(s) "
            f"{', '.join(labels)} without noise: L_j = {{Z_j, H_I}} pushes these components "
            "but σ has no noise there, which violates complete positivity "
            "((1 − D2 D2⁺) D1 = 0, docs/physics.md). Add noise on those components or remove the "
            "coupling."
        )
