"""Stage 6, the networks: Keras layers and losses (:mod:`~mrs_tf.nn.layers`), functional models
(:mod:`~mrs_tf.nn.models`), ``tf.data`` and TFDS input (:mod:`~mrs_tf.nn.data`), training
(:mod:`~mrs_tf.nn.train`), deep ensembles (:mod:`~mrs_tf.nn.ensemble`), keras-tuner search (:mod:`~mrs_tf.nn.tuning`), a trained model's folder
(:mod:`~mrs_tf.nn.bundle`) and LiteRT export (:mod:`~mrs_tf.nn.export`). TensorFlow is imported inside functions."""
