//! Domain types shared by every stage of suture.
//!
//! This crate owns the normalised [`event::Event`] that every signal source
//! (Sentry SDK, Sentry integration webhooks, PagerDuty) is turned into. It has
//! no I/O and knows nothing about git, HTTP or LLMs, so every other crate can
//! depend on it without pulling those in.

pub mod config;
pub mod event;
pub mod fingerprint;
