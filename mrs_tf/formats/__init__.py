"""Stage 1, the field's file formats as plain arrays and headers, one module per format: LCModel ``.BASIS``/``.RAW``
(:mod:`~mrs_tf.formats.lcmodel`), NIfTI-MRS (:mod:`~mrs_tf.formats.nifti`), jMRUI text (:mod:`~mrs_tf.formats.jmrui`),
FSL-MRS basis folders (:mod:`~mrs_tf.formats.fslmrs`), Osprey's MATLAB basis files (:mod:`~mrs_tf.formats.osprey`),
vendor files through spec2nii (:mod:`~mrs_tf.formats.vendor`), and basis files of any of them
(:mod:`~mrs_tf.formats.basis_files`). Nothing here knows metabolites or basis sets: :meth:`mrs_tf.BasisSet.load` and
:func:`mrs_tf.io.read_data` build on it."""
