"""Fine-tuning with transformers and Accelerate: benchmarks, fine selection, distributed runs."""
