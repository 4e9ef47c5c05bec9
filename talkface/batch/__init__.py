"""Batch dubbing: many audios x many people from one manifest, resumable, local or on Ray.

`talkface.batch(...)` is callable (it is `run_batch`), so the API reads like the command:

    import talkface
    report = talkface.batch("jobs.csv", workers=2)
"""

from __future__ import annotations

import sys
import types

from talkface.batch.manifest import Job, read_manifest
from talkface.batch.runner import BatchReport, JobResult, default_workers, run_batch

__all__ = ["BatchReport", "Job", "JobResult", "default_workers", "read_manifest", "run_batch"]


class _CallableModule(types.ModuleType):
    def __call__(self, *args, **kwargs) -> BatchReport:
        return run_batch(*args, **kwargs)

    __call__.__doc__ = run_batch.__doc__


sys.modules[__name__].__class__ = _CallableModule
