"""Defences against model extraction: output perturbations and query-pattern detectors.

An :class:`OutputDefence` rewrites a victim's outputs before a client sees them
(:class:`Rounding`, :class:`TopK`, :class:`AdditiveNoise`, :class:`ReverseSigmoid`, and for
encoders :class:`EmbeddingTransform`); :class:`Chain` composes them. A :class:`QueryDetector`
(:class:`PRADA`) watches each client's queries and flags extraction patterns. Both families
are registered by name in :data:`DEFENCES` and :data:`DETECTORS`, and built from a spec with
:func:`build_defence` and :func:`build_detector`.
"""

from trustlab.extraction.defences.additive_noise import AdditiveNoise
from trustlab.extraction.defences.base import DetectorVerdict, OutputDefence, QueryDetector
from trustlab.extraction.defences.chain import Chain, chain
from trustlab.extraction.defences.embedding_transform import ClientTransform, EmbeddingTransform
from trustlab.extraction.defences.prada import PRADA
from trustlab.extraction.defences.registry import (
    DEFENCES,
    DETECTORS,
    DefenceSpec,
    build_defence,
    build_detector,
    register_defence,
    register_detector,
)
from trustlab.extraction.defences.reverse_sigmoid import ReverseSigmoid
from trustlab.extraction.defences.rounding import Rounding
from trustlab.extraction.defences.top_k import TopK

__all__ = [
    "DEFENCES",
    "DETECTORS",
    "PRADA",
    "AdditiveNoise",
    "Chain",
    "ClientTransform",
    "DefenceSpec",
    "DetectorVerdict",
    "EmbeddingTransform",
    "OutputDefence",
    "QueryDetector",
    "ReverseSigmoid",
    "Rounding",
    "TopK",
    "build_defence",
    "build_detector",
    "chain",
    "register_defence",
    "register_detector",
]
