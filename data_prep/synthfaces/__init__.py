"""``synthfaces``: the embedded, procedurally drawn face dataset.

CK+ and Oulu-CASIA cannot be shipped, so this package draws faces with OpenCV/numpy:

* identities (:func:`sample_identity`) with stable geometry and appearance: face shape, jaw,
  skin tone, hair colour/style/hairline, eye spacing/size/shape/iris colour, brows, nose,
  mouth width and lips, ears, an optional mole, and binary face attributes
  (:func:`sample_attributes`, e.g. beard/goatee/eyeglasses) with a documented correlation structure;
* the 8 CK+ expression classes (0 neutral .. 7 surprise, :data:`EXPRESSIONS`) as FACS-like
  deformations of mouth, brows, eyes, cheeks and nose, at a continuous intensity in [0, 1];
  a strong expression moves exactly the cues that identify a face (eye opening, mouth width,
  brow height), which is the premise of Ming et al. 2019;
* CK+-like sequences from neutral (intensity 0) to peak, so "first frame + last 3 frames" applies;
* per-image nuisance: roll / pseudo-yaw / scale / translation, illumination gradient and
  brightness, Gaussian noise and blur, and eye-landmark noise before alignment.

:func:`generate` writes the exact CK+ layout (``cohn-kanade-images/S001/001/S001_001_00000001.png``
and ``Emotion/S001/001/S001_001_0000000N_emotion.txt``) plus pre-aligned crops of the protocol
frames under ``aligned/`` (same relative names) and ``identities.csv``. The crops are aligned
with the ground-truth eye centres (plus landmark noise) by :func:`data_prep.align.align_face`,
the same template the MTCNN path uses, so no detector is needed for synthetic faces.

Everything is deterministic: identity ``i`` draws from the stream
``data_prep.seeds.IDENTITY`` keyed by ``i``, its sequence ``j`` from ``SEQUENCE`` keyed by ``(i, j)``, so the output does not depend on the
order of generation or the number of worker processes.

The package, one module per step:

* :mod:`~data_prep.synthfaces.attributes`: the binary attributes' Gaussian copula;
* :mod:`~data_prep.synthfaces.identity`: an identity's proportions and colours from a seed;
* :mod:`~data_prep.synthfaces.expressions`: the expressions as action units;
* :mod:`~data_prep.synthfaces.geometry`: where the face's parts sit (:class:`FaceGeometry`);
* :mod:`~data_prep.synthfaces.canvas` and :mod:`~data_prep.synthfaces.drawing`: the drawing;
* :mod:`~data_prep.synthfaces.render`: background, placement and nuisance of one image;
* :mod:`~data_prep.synthfaces.writing`: the CK+-layout dataset and the contact sheet.

It imports neither TensorFlow nor MTCNN.
"""

from .attributes import (
    _CHOLESKY,
    ATTRIBUTE_GROUPS,
    ATTRIBUTE_LATENT_CORRELATION,
    ATTRIBUTE_PREVALENCE,
    ATTRIBUTE_THRESHOLDS,
    ATTRIBUTES,
    IDENTITY_ATTRIBUTES,
    STATE_ATTRIBUTES,
    attribute_correlation,
    sample_attribute_matrix,
    sample_attributes,
)
from .expressions import ACTION_UNITS, EXPRESSION_ACTION_UNITS, EXPRESSION_CODES, EXPRESSIONS, action_units
from .geometry import FaceGeometry
from .identity import identity_params, sample_identity, subject_expressions
from .render import background, face_transform, photometric, render_face, render_frame
from .writing import SynthConfig, contact_sheet, generate, intensity_curve, subject_name, write_png

# The names of the single-module generator, for callers written against it.
_ATTR_CHOL = _CHOLESKY
_ATTR_THRESHOLDS = ATTRIBUTE_THRESHOLDS
_background = background
_face_transform = face_transform
_render_frame = render_frame
_intensity_curve = intensity_curve
_write_png = write_png

__all__ = [
    "ACTION_UNITS",
    "ATTRIBUTES",
    "IDENTITY_ATTRIBUTES",
    "ATTRIBUTE_GROUPS",
    "ATTRIBUTE_LATENT_CORRELATION",
    "ATTRIBUTE_PREVALENCE",
    "ATTRIBUTE_THRESHOLDS",
    "EXPRESSIONS",
    "EXPRESSION_ACTION_UNITS",
    "EXPRESSION_CODES",
    "STATE_ATTRIBUTES",
    "FaceGeometry",
    "SynthConfig",
    "action_units",
    "attribute_correlation",
    "background",
    "contact_sheet",
    "face_transform",
    "generate",
    "identity_params",
    "intensity_curve",
    "photometric",
    "render_face",
    "render_frame",
    "sample_attribute_matrix",
    "sample_attributes",
    "sample_identity",
    "subject_expressions",
    "subject_name",
    "write_png",
]
