"""Stage 2, the physics: spin systems and priors (:mod:`~mrs_tf.physics.metabolites`), the density-matrix simulator
(:mod:`~mrs_tf.physics.spin_sim`) and its shaped refocusing pulses (:mod:`~mrs_tf.physics.pulses`),
macromolecules (:mod:`~mrs_tf.physics.macromolecules`), basis sets
(:mod:`~mrs_tf.physics.basis`: ``BasisSet``, ``simulate_basis``) and in vivo-like synthesis
(:mod:`~mrs_tf.physics.synth`: ``synthesize``)."""
