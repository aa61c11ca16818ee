"""The ``mrs-tf`` command: one parser over the command groups (:mod:`~mrs_tf.cli.simulate`, :mod:`~mrs_tf.cli.fit`,
:mod:`~mrs_tf.cli.network`), each command's handler called with the parsed arguments; input errors
(:class:`~mrs_tf.core.errors.MRSError`) end with their message and status 2, not a traceback."""
from __future__ import annotations

import argparse
import sys

from mrs_tf.cli import fit, network, simulate
from mrs_tf.core.errors import MRSError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mrs-tf", description="Deep-learning quantification of 1H MRS.")
    sub = parser.add_subparsers(dest="command", required=True)
    simulate.add_parsers(sub)
    fit.add_parsers(sub)
    network.add_parsers(sub)
    return parser


#: (command, action) -> handler
_COMMANDS = {("basis", "simulate"): simulate._basis_simulate, ("basis", "info"): simulate._basis_info,
             ("synth", None): simulate._synth, ("data", "build"): simulate._data_build,
             ("fit", None): fit._fit, ("quantify", None): fit._quantify,
             ("train", None): network._train, ("tune", None): network._tune, ("evaluate", None): network._evaluate,
             ("export", None): network._export}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command in ("train", "tune", "evaluate", "export") or (args.command, getattr(args, "action", None)) == (
            "data", "build"):
        from mrs_tf.core.quiet import import_tensorflow

        import_tensorflow()  # these load TensorFlow anyway: without its start-up lines on stderr
    try:
        _COMMANDS[(args.command, getattr(args, "action", None))](args)
    except MRSError as exc:
        print(f"mrs-tf: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
