# Empty dependencies file for vww_core_tests.
# This may be replaced when dependencies are built.
