//! End-to-end scenarios across crates, run against the real binary with real
//! git repositories and real `sentry-sdk` events.

// End-to-end tests run the real binary and the real SDKs.
#![allow(clippy::disallowed_methods)]

mod actions;
mod diagnose;
mod diagnose_fixtures;
mod diagnose_input;
mod heal;
mod heal_js;
mod heal_llm;
mod hostile_text;
mod ingest_attacks;
mod kill_switch;
mod loop_github;
mod loop_local;
mod pages_browser;
mod partial_revert;
mod releases;
mod reproduce_gate;
mod reproduce_js;
mod reproduce_python;
mod sandbox_exposure;
mod serve;
mod serve_crash;
mod shallow;
mod triggers;
