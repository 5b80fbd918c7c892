"""From the sensors' raw files to a prepared dataset: NTU RGB+D `.skeleton` and PKU-MMD files
(`ntu`, `pku`), the conversion `halp-bench prepare` runs (`prepare`), and normalisation (`normalize`)."""
