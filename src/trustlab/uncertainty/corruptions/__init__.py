"""Natural corruptions at severities 1 to 5, after Hendrycks and Dietterich (2019), and the
accuracy and mean corruption error under them."""

from trustlab.uncertainty.corruptions import blur, digital, noise, photometric
from trustlab.uncertainty.corruptions.accuracy import CorruptionReport, corruption_accuracy
from trustlab.uncertainty.corruptions.base import CORRUPTIONS, SEVERITIES, corrupt

del blur, digital, noise, photometric

__all__ = ["CORRUPTIONS", "SEVERITIES", "CorruptionReport", "corrupt", "corruption_accuracy"]
