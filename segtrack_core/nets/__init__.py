"""Trainable networks (torch nn.Modules) and their weight loading; the online learners fitted per target
at run time live in ``segtrack_core.models``."""
