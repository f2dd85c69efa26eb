"""Developer scripts (code generation, benchmarks)."""
