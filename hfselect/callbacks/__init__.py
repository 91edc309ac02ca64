"""Trainer callbacks: add one to your existing ``transformers.Trainer`` code."""

from hfselect.callbacks.convergence import ConvergenceTrendCallback

__all__ = ["ConvergenceTrendCallback"]
