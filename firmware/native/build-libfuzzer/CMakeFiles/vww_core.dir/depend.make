# Empty dependencies file for vww_core.
# This may be replaced when dependencies are built.
