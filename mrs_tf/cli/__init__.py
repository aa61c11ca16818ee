"""Stage 9, the command line ``mrs-tf``: parses arguments and calls the library."""
from mrs_tf.cli.commands import main

__all__ = ["main"]
