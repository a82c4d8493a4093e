# Empty dependencies file for vww_native_runner.
# This may be replaced when dependencies are built.
