"""Face-verification evaluation: benchmark pair readers and the k-fold protocol (numpy only)."""
