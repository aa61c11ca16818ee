"""mrs_brain_sim: simulated human-brain 1H MR spectra with ground truth."""
