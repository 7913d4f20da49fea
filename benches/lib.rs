//! Benchmarks only: see the `[[bench]]` targets and the `lambda_harness` example (BENCHMARKS.md).
