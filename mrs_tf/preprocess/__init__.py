"""Stage 3, preprocessing of spectra: the network's input and the crop (:mod:`~mrs_tf.preprocess.spectra`), frequency
referencing and mirror detection, Klose eddy-current correction and spectral registration (same module), coil
combination and averaging (:mod:`~mrs_tf.preprocess.combine`) and HLSVD (:mod:`~mrs_tf.preprocess.hlsvd`)."""
from mrs_tf.preprocess.combine import AVERAGED_TAGS, combine_dimensions
from mrs_tf.preprocess.spectra import (DEFAULT_PPM_RANGE, as_fid_matrix, crop_slice, cropped_spectrum,
                                       eddy_current_correction, frequency_reference, full_spectrum, looks_mirrored,
                                       input_scores, magnitude_correlation, mirror_scores, resample_fids,
                                       singlet_shape, spectral_registration)

__all__ = ["DEFAULT_PPM_RANGE", "as_fid_matrix", "crop_slice", "cropped_spectrum", "full_spectrum", "resample_fids",
           "frequency_reference", "magnitude_correlation", "input_scores", "mirror_scores", "looks_mirrored",
           "eddy_current_correction", "singlet_shape", "spectral_registration", "combine_dimensions", "AVERAGED_TAGS"]
