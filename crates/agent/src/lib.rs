//! suture's loop: turn an event and a repository into a diagnosis, and the
//! diagnosis into the smallest safe fix proven by the repository's tests.
//!
//! **Invariant:** the agent reads the repository only through `repo`; it never
//! shells out to git.

pub mod diagnose;
pub mod heal;
pub mod llm;
pub mod markdown;
pub mod redact;
pub mod reproduce;
