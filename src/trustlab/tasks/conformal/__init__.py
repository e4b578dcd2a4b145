"""The ``conformal`` task kind: prediction sets that cover the true label, as small as possible.

Setting
-------
Building a task trains a model (``digits-cnn`` by default, on few examples so that it errs)
with the spec's seed and publishes:

``model.safetensors``
    The model (``trustlab.load_model("model.safetensors")``).
``calibration.npz``
    ``x``, ``y``: labelled examples the model never saw, for calibrating sets (split
    conformal prediction).
``test.npz``
    ``ids``, ``x``: the examples to give sets to.
``sample_submission.csv`` and ``README.md``
    Sets of every class (always valid, score 0), and the rules
    (``templates/conformal_readme.md.j2``).

A submission gives one prediction set per test id, as class lists (``id,labels`` with
``3 7``) or a 0/1 matrix (``id,0,1,...``). On each part (public, private; stratified by
class) ``coverage`` is the share of examples whose set holds the true label and
``mean_set_size`` the mean number of labels. **A part whose coverage is below
``1 - alpha - tolerance`` scores zero**; otherwise ``score = 1 - mean_set_size /
n_classes``. ``tolerance`` allows for the sampling noise of a part's coverage: a method with
exact ``1 - alpha`` coverage falls below it only by chance.
"""

from trustlab.tasks.conformal.kind import MSG_TOO_SMALL, Conformal, part_metrics
from trustlab.tasks.conformal.params import ConformalParams
from trustlab.tasks.conformal.submission import read_sets

__all__ = ["MSG_TOO_SMALL", "Conformal", "ConformalParams", "part_metrics", "read_sets"]
