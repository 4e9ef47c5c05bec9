"""Batch dubbing from Python: the same as `talkface batch examples/batch.csv --preset draft`.

The manifest's person is a clip, so it is finetuned once (preset 'draft': a few minutes on a
CPU) and shared by every row. The last row names an audio file that does not exist: it fails
alone, with its reason in the table and the report. Run this again and the finished rows are
skipped.

Usage: python examples/batch_demo.py [--workers N]
"""

import argparse
from pathlib import Path

import talkface

parser = argparse.ArgumentParser()
parser.add_argument("--workers", type=int, default=None)
args = parser.parse_args()

report = talkface.batch(Path(__file__).with_name("batch.csv"), workers=args.workers, preset="draft")
for result in report.results:
    print(f"row {result.row}: {result.status:8} {Path(result.out).name:24} {result.seconds:6.1f} s  {result.error}")
print(f"{report.counts} in {report.seconds:.1f} s; report: {report.report_path}")
