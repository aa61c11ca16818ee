"""Stage 8, what people read: metrics against truth (:mod:`~mrs_tf.reporting.evaluate`), plotly figures
(:mod:`~mrs_tf.reporting.plots`), HTML reports (:mod:`~mrs_tf.reporting.report`) and model cards
(:mod:`~mrs_tf.reporting.model_card`)."""
