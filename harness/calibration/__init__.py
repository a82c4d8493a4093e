"""Fitting the sim cost model to QEMU instruction counts (`hil calibrate`)."""
