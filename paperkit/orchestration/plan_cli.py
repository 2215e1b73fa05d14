"""``python -m paperkit plan``: the plan of a profile on the command line."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from paperkit.config import PROFILE_HELP, ConfigError, resolve
from paperkit.pipeline.plan.build import make_plan
from paperkit.pipeline.plan.report import format_plan, summary_line


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", default="cpu", help=PROFILE_HELP)
    parser.add_argument("--data-root", default="", help="your dataset root (nih/chexpert): counts its images")
    parser.add_argument("-p", "--param", action="append", default=[], metavar="KEY=VALUE",
                        help="override a profile field, as for `run`")
    parser.add_argument(
        "--no-probe",
        action="store_true",
        help="no throughput probe: the README's H200 rates where they cover the networks, else no times",
    )
    parser.add_argument("--total", action="store_true", help="print the total only, not one line per run")


def main(args: argparse.Namespace) -> int:
    from paperkit.orchestration.preflight import run_preflight
    from paperkit.orchestration.runner import parse_overrides

    try:
        overrides = parse_overrides(args.param)
        if args.data_root:
            overrides["data_root"] = str(Path(args.data_root).expanduser().resolve())
        cfg = resolve(args.profile, overrides)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    counted = None
    if cfg.needs_data_root and cfg.data_root:
        report = run_preflight(cfg)  # counts the images; its problems do not stop a plan
        print(report.summary())
        for problem in report.problems:
            print(f"warning: {problem}", file=sys.stderr)
        counted = report.sizes
    elif cfg.needs_data_root:
        print(f"no --data-root: image counts of the full public {cfg.dataset} dataset")
    plan = make_plan(cfg, probe_requested=not args.no_probe, counted=counted, echo=print)
    print(summary_line(plan) if args.total else format_plan(plan))
    return 0
