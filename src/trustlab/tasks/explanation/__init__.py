"""The ``explanation`` task kind: explain a served model; maps are scored on hidden masks.

Building a task draws scikit-learn's digits at random positions on noisy canvases
(:func:`trustlab.core.data.digits_canvas.make_digits_canvas`; the label depends on the digit
alone, so its 8x8 box is where a correct explanation points), trains the task's model on the
training canvases and publishes, for ``n_explain`` test canvases:

``model.safetensors``
    The served model (``trustlab.load_model`` rebuilds it).
``inputs.npz``
    ``ids``, ``x``: the canvases to explain, float32 ``(n, 1, H, W)`` in [0, 1].
``sample_submission.npz``
    One uniformly random ``(H, W)`` map per id: the format, and the chance level.
``README.md``
    The rules (``templates/explanation_readme.md.j2``), with the public figures of the random
    sample and of the library's reference methods (Grad-CAM, Integrated Gradients).

The hidden answers are each canvas's digit box, the model's predicted class and the
public/private split (stratified by label).

A submission is an ``.npz`` archive with one floating-point map per input id, named by the id
as text, of shape ``(H, W)`` or ``(C, H, W)`` (summed over channels), finite. It explains the
model's predicted class. On each part, ``pointing_game`` is the share of maps whose maximum
lies in the digit box, ``relevance_mass`` the mean share of positive relevance inside it
(Arras et al., 2022), ``relevance_rank`` the share of the box's size of top pixels inside it,
``deletion_auc`` the mean area under the deletion curve against the served model (Petsiuk et
al., 2018; lower is more faithful), and

    score = (pointing_game + relevance_mass) / 2.
"""

from trustlab.tasks.explanation.kind import (
    ANSWERS_FILE,
    INPUTS_FILE,
    MODEL_FILE,
    MSG_DATASET,
    MSG_METHOD,
    SAMPLE_FILE,
    Explanation,
)
from trustlab.tasks.explanation.params import CANVAS_DATASET, CanvasOptions, ExplanationParams
from trustlab.tasks.explanation.submission import read_maps

__all__ = [
    "ANSWERS_FILE",
    "CANVAS_DATASET",
    "INPUTS_FILE",
    "MODEL_FILE",
    "MSG_DATASET",
    "MSG_METHOD",
    "SAMPLE_FILE",
    "CanvasOptions",
    "Explanation",
    "ExplanationParams",
    "read_maps",
]
