//! End-to-end scenarios across crates, run against the real binary.
