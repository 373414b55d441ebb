"""Speed, accuracy and incremental benchmarks (see README, "Performance")."""

import provenance  # noqa: F401  (first: it tunes polars' allocator before polars loads)
