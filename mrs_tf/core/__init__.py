"""Stage 0, the foundation every stage may import: domain errors (:mod:`~mrs_tf.core.errors`), atomic file writes
(:mod:`~mrs_tf.core.files`), the result table (:mod:`~mrs_tf.core.table`) and a quiet TensorFlow start-up
(:mod:`~mrs_tf.core.quiet`)."""

__version__ = "0.1.0"
