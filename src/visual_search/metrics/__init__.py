"""Measures: retrieval quality (mAP, top-K metrics), latency summaries and encoder throughput, and the
model-free baselines."""
