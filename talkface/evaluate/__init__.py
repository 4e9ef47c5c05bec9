"""Offline evaluation of talking-face videos: metrics, identity, reports."""

from talkface.evaluate.run import ComparisonMetrics, Evaluation, VideoMetrics, evaluate

__all__ = ["ComparisonMetrics", "Evaluation", "VideoMetrics", "evaluate"]
