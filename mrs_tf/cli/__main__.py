"""``python -m mrs_tf.cli``: the same as the ``mrs-tf`` command."""
import sys

from mrs_tf.cli.commands import main

sys.exit(main())
