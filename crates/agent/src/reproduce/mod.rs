//! Reproduction: before any fix is tried, a test that fails the way
//! production failed, at the deployed revision.
//!
//! A fix is *proven* only when this test passes with it (and the suite still
//! passes); without one the best a fix can be is *plausible*. Candidates, in
//! order: a test of the suite that already fails with the event's exception
//! (*existing*); a *replay* test written from the crash frame's local
//! variables (deterministic, no model); a test the model writes (*llm*).
//! Every candidate passes the same gate in the sandbox.

// Wired into the ladder in the following change.
#![allow(dead_code)]

mod junit;
mod layout;
mod literal;
mod llm;
mod render;
mod runner;
mod test_paths;
