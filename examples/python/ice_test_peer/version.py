"""Kept equal to package.json's version by test/python-peer.test.ts."""
VERSION = "0.1.0"
