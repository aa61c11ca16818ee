"""TensorFlow Datasets builders of mrs-tf. Importing this package registers them with ``tfds``."""
from .mrs_brain_sim.mrs_brain_sim_dataset_builder import Builder as MrsBrainSim  # noqa: F401
