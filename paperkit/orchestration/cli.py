"""``python -m paperkit VERB ...``: one entry point; each verb lives in the module that does the work.

A verb module exposes ``add_arguments(parser)`` and ``main(args) -> int``. Modules are imported
only when their verb runs, so ``--help`` stays fast and a verb's heavy imports cost nothing elsewhere.
"""
from __future__ import annotations

import argparse
import importlib
import sys

#: verb -> (module, one-line help)
VERBS: dict[str, tuple[str, str]] = {
    "run": ("paperkit.orchestration.runner", "execute the notebooks of a profile (what run_all.sh calls)"),
    "phantom": ("paperkit.data.benchmark", "generate the embedded benchmark in the NIH or CheXpert layout"),
    "summarize": ("paperkit.data.summarize", "summarise a dataset root from its metadata"),
    "profiles": ("paperkit.orchestration.cli", "list the profiles and their settings"),
    "plan": (
        "paperkit.orchestration.plan_cli",
        "list every training run of a profile with an estimated time (no training)",
    ),
    "weights": (
        "paperkit.orchestration.weights",
        "save timm's ImageNet weights as <arch>.pth for offline machines (-p pretrained=DIR)",
    ),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", nargs="?", help="show one profile in full")


def main_profiles(args: argparse.Namespace) -> int:
    from paperkit.config import PROFILES, get_profile

    if args.name:
        for key, value in get_profile(args.name).to_dict().items():
            print(f"{key:20s} {value}")
        return 0
    for name, profile in PROFILES.items():
        print(f"{name:10s} dataset={profile.dataset:10s} {profile.notes}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m paperkit", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    for verb, (_, help_text) in VERBS.items():
        sub.add_parser(verb, help=help_text, add_help=False)
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        parser.print_help()
        return 0 if argv else 2
    verb = argv[0]
    if verb not in VERBS:
        parser.error(f"unknown verb {verb!r}; choose one of: {', '.join(VERBS)}")
    module = importlib.import_module(VERBS[verb][0])
    verb_parser = argparse.ArgumentParser(prog=f"python -m paperkit {verb}", description=VERBS[verb][1])
    module.add_arguments(verb_parser)
    args = verb_parser.parse_args(argv[1:])
    entry = main_profiles if verb == "profiles" else module.main
    return int(entry(args) or 0)
