"""The ``robustness`` task kind: submit a model, be scored on clean and robust accuracy.

Building a task splits an image data set (pixel values in [0, 1]) into a public training set
and a hidden evaluation set, then publishes:

``train.npz``
    ``x``, ``y``: the examples teams train on.
``sample_submission.safetensors``
    A normally trained baseline of the task's first architecture: the submission format, and a
    starting point for adversarial fine-tuning.
``README.md``
    The threat model, the input format, the accepted architectures and the scoring rule
    (``templates/robustness_readme.md.j2``).

A submission is a weights file (safetensors, or a ``.pt`` state dict read with
``weights_only=True``) and a ``model_name`` form field naming one of the task's architectures;
the weights must fit it exactly. Validation and scoring run in a limited child process.

Scoring: the clean accuracy on the whole hidden set must reach ``clean_floor``, or the
submission fails with a message giving its accuracy. Then the task's attacks run as a
per-example cascade: each attack gets only the examples every earlier attack failed on, and an
example is robust only if it is classified correctly and every attack failed on it. The score
of each part (public, private) is ``weights.clean * clean_accuracy + weights.robust *
robust_accuracy``. Metrics add bootstrap intervals, the share of examples each attack broke,
the forward and backward passes spent, and the flags of the robustness sanity checks.
"""

from trustlab.tasks.robustness.kind import (
    MIN_TRAIN,
    MSG_FLOOR,
    MSG_NOT_IMAGES,
    MSG_OUTPUT,
    MSG_TOO_SMALL,
    VALIDATION_ROWS,
    Robustness,
)
from trustlab.tasks.robustness.params import (
    AUTOATTACK,
    AUTOATTACK_VERSIONS,
    MSG_ATTACK_BAD,
    MSG_ATTACK_NORM,
    MSG_ATTACK_RESERVED,
    MSG_ATTACK_TARGETED,
    MSG_AUTOATTACK,
    MSG_DUPLICATE_ATTACK,
    RESERVED_OPTIONS,
    AttackEntry,
    RobustnessParams,
    ScoreWeights,
    attack_problems,
    default_architectures,
    make_cascade,
)

__all__ = [
    "AUTOATTACK",
    "AUTOATTACK_VERSIONS",
    "MIN_TRAIN",
    "MSG_ATTACK_BAD",
    "MSG_ATTACK_NORM",
    "MSG_ATTACK_RESERVED",
    "MSG_ATTACK_TARGETED",
    "MSG_AUTOATTACK",
    "MSG_DUPLICATE_ATTACK",
    "MSG_FLOOR",
    "MSG_NOT_IMAGES",
    "MSG_OUTPUT",
    "MSG_TOO_SMALL",
    "RESERVED_OPTIONS",
    "VALIDATION_ROWS",
    "AttackEntry",
    "Robustness",
    "RobustnessParams",
    "ScoreWeights",
    "attack_problems",
    "default_architectures",
    "make_cascade",
]
