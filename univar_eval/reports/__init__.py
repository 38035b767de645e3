"""What people read: comparisons, the release gate, drift, leaderboards, tables and plots.

Where each step lives and the layer order: docs/architecture.md."""
