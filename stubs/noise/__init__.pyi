# Minimal stubs for noiseprotocol 0.3.1 (import name "noise"); see README.md.
__all__ = ["connection"]
