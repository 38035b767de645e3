"""Statistics on value distributions: distances, tests, the gate's bounds, calibration, identification.

Where each step lives and the layer order: docs/architecture.md."""
