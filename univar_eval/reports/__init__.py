"""What people read: comparisons with reference models, the release gate, leaderboards and plots."""
