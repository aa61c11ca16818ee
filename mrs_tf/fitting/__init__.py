"""Stage 5, classical fitting: the signal model (:mod:`~mrs_tf.fitting.signal_model`), QUEST
(:mod:`~mrs_tf.fitting.quest`), Cramér-Rao bounds (:mod:`~mrs_tf.fitting.crlb`), the network-initialised fit
(:mod:`~mrs_tf.fitting.hybrid`), water scaling (:mod:`~mrs_tf.fitting.water`), foreign-basis preparation
(:mod:`~mrs_tf.fitting.basis_prep`) and the LCModel runner (:mod:`~mrs_tf.fitting.lcmodel`)."""
