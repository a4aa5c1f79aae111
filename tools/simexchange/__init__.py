"""The simulated exchange: real exchange paths and response shapes over a deterministic price path."""
