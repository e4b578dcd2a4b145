"""Model extraction: oracles around a victim, defences, stealing attacks and fidelity metrics.

An :class:`Oracle` answers queries to a victim (:class:`LocalOracle` for a model in this
process, :class:`RemoteOracle` for an arena task) under a budget, optionally through the
defences of :mod:`trustlab.extraction.defences`. Attacks (:class:`KnockoffNets`,
:class:`JacobianAugmentation`, :class:`ActiveThief`, :class:`Distillation`) spend that budget
to train a copy, and :mod:`trustlab.extraction.metrics` measures how faithful the copy is.

Each family is registered by name: :data:`EXTRACTION_ATTACKS` (built with
:func:`build_attack`), :data:`DEFENCES` (output defences, :func:`build_defence`) and
:data:`DETECTORS` (query detectors, :func:`build_detector`).
"""

from trustlab.extraction.active_thief import ActiveThief
from trustlab.extraction.base import ExtractionAttack, ExtractionResult, HistoryPoint
from trustlab.extraction.defences import (
    DEFENCES,
    DETECTORS,
    DefenceSpec,
    DetectorVerdict,
    OutputDefence,
    QueryDetector,
    build_defence,
    build_detector,
    register_defence,
    register_detector,
)
from trustlab.extraction.distillation import Distillation
from trustlab.extraction.errors import BudgetExhaustedError
from trustlab.extraction.jacobian import JacobianAugmentation
from trustlab.extraction.knockoff import KnockoffNets
from trustlab.extraction.metrics import (
    embedding_l2,
    kl_divergence,
    l1_distance,
    label_agreement,
    transfer_rate,
)
from trustlab.extraction.oracle import (
    LocalOracle,
    Oracle,
    QueryAnswer,
    QueryClient,
    QueryRecord,
    RemoteOracle,
)
from trustlab.extraction.registry import EXTRACTION_ATTACKS, build_attack, register_attack

__all__ = [
    "DEFENCES",
    "DETECTORS",
    "EXTRACTION_ATTACKS",
    "ActiveThief",
    "BudgetExhaustedError",
    "DefenceSpec",
    "DetectorVerdict",
    "Distillation",
    "ExtractionAttack",
    "ExtractionResult",
    "HistoryPoint",
    "JacobianAugmentation",
    "KnockoffNets",
    "LocalOracle",
    "Oracle",
    "OutputDefence",
    "QueryAnswer",
    "QueryClient",
    "QueryDetector",
    "QueryRecord",
    "RemoteOracle",
    "build_attack",
    "build_defence",
    "build_detector",
    "embedding_l2",
    "kl_divergence",
    "l1_distance",
    "label_agreement",
    "register_attack",
    "register_defence",
    "register_detector",
    "transfer_rate",
]
