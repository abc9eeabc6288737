//! The synthetic repository and trace behind `suture bench`: `code` models
//! source files, `history` plans the commits, `synthetic` writes them into
//! git (or finds a kept repository), `event` builds the trace to diagnose.

pub(crate) mod event;
pub(crate) mod history;
pub(crate) mod synthetic;

mod code;
mod rng;
