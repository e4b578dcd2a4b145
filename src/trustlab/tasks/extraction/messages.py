"""The messages of the ``model-extraction`` kind, as tested constants.

The query endpoint's batch messages belong to the query contract
(:mod:`trustlab.tasks.base`); the ONNX reader's to :mod:`trustlab.tasks.onnx_submission`.
"""

MSG_OUTPUT_SHAPE = (
    "Your model returns outputs of shape {shape} for {n} inputs; the task needs shape "
    "({n}, {dim}), one {what} per input."
)
MSG_OUTPUT_NON_FINITE = (
    "Your model returned {what} for the task's input {row}; it must return finite outputs."
)
MSG_MODEL_RUN = "Your model failed on the task's inputs: {error}"
MSG_NO_QUERY_FORMAT = "{path} is missing; rebuild the task with 'trustlab task build'."
MSG_TOO_SMALL = (
    "params: {dataset} has {available} examples, but the task needs {needed} "
    "(n_train + n_eval + at least one pool input); lower n_train or n_eval."
)
MSG_DEFENCE_MODE = (
    "field 'params.defence': the {name!r} defence does not apply to {output!r} outputs; "
    "embedding-transform is for embeddings, top-k and reverse-sigmoid for probabilities"
)
MSG_NO_LIBRARY = (
    "field 'params.{field}': the {what} {name!r} needs trustlab.extraction, which cannot be "
    "imported ({error}); install trustlab with its extraction pillar or remove the {what}."
)
