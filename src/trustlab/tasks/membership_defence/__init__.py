"""The ``membership-defence`` task kind: train a model that is accurate and leaks little.

Building a task splits a data set into a published training set, a hidden test set and hidden
population samples, trains the server's reference models **once** (each on a random half of
the training and test rows, with the task's recipe; saved under ``hidden/reference/`` with
:meth:`trustlab.privacy.ReferenceModels.save`), and publishes:

``train.npz``
    ``x``, ``y``: the examples a submission is trained on (its members).
``sample_submission.safetensors``
    A model of the task's first architecture trained on ``train.npz`` with the reference
    recipe and no defence: a valid submission, and the baseline to beat.
``README.md``
    The input format, the architectures, the attacks and the scoring rule
    (``templates/membership-defence_readme.md.j2``), with the baseline's public metrics.

A submission is a weights file (safetensors, or a ``.pt`` state dict read with
``weights_only=True``) and a ``model_name`` form field naming one of the task's architectures.
Validation and scoring run in a limited child process.

Scoring: the task's attacks (online LiRA and RMIA by default) score every training row
(members) and every test row (non-members) against the submission, with the task's reference
models (LiRA's ``candidate_index`` is each row's place in the reference population) and, for
RMIA, the hidden population samples. On each part (public, private; both stratified by
membership), ``accuracy`` is the accuracy on the part's test rows, ``leakage`` the largest TPR
at FPR ``fpr`` (default 1%) of the attacks on the part's rows (threshold rule of
:func:`trustlab.core.metrics.tpr_at_fpr`: the largest TPR at FPR <= ``fpr``, no
interpolation), and

    score = accuracy - penalty * max(0, leakage - leakage_bound).
"""

from trustlab.tasks.membership_defence.kind import (
    MSG_OUTPUT,
    MSG_TOO_SMALL,
    REFERENCE_FOLDER,
    MembershipDefence,
)
from trustlab.tasks.membership_defence.params import (
    DEFENCE_ATTACKS,
    MSG_ATTACK_OPTION,
    MSG_ATTACK_RESERVED,
    MSG_DUPLICATE_ATTACK,
    DefenceAttack,
    DefenceParams,
    ReferenceRecipe,
    attack_problems,
    default_architectures,
)

__all__ = [
    "DEFENCE_ATTACKS",
    "MSG_ATTACK_OPTION",
    "MSG_ATTACK_RESERVED",
    "MSG_DUPLICATE_ATTACK",
    "MSG_OUTPUT",
    "MSG_TOO_SMALL",
    "REFERENCE_FOLDER",
    "DefenceAttack",
    "DefenceParams",
    "MembershipDefence",
    "ReferenceRecipe",
    "attack_problems",
    "default_architectures",
]
