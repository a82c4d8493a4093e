# Empty dependencies file for vww_fuzz_server.
# This may be replaced when dependencies are built.
