//! suture's ingest surface.
//!
//! Today this holds the Sentry envelope framing, so an envelope captured from
//! an SDK can be read as an event. The HTTP endpoints grow here.
//!
//! **Invariant:** ingest knows nothing about git.

pub mod envelope;
