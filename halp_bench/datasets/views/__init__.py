"""What a model sees of a sequence: the modalities (joint, motion, bone) and each family's
augmented views, named after the family that defined them: `cmd` (CMD and HaLP: crop-resize, shear,
joint corruption; also the protocols' crops), `clr` (the ST-GCN family's normal views) and
`extreme` (AimCLR's extreme views)."""
