"""Test helpers that ship with the package (the loopback Firebolt stand-in)."""
