"""Speed and memory benchmarks, as ratios to native PyTorch (see README.md here)."""
