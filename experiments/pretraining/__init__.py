"""Verification pretraining (Section 5.3) and LFW-format evaluation: ``dynamic-mtl pretrain`` / ``eval-lfw``."""
