//! In-process fakes of the services suture cannot reach from a test machine,
//! speaking their real wire formats and checked against the official
//! contracts in `shared/contracts/`. Only services that cannot run here are
//! faked: everything else in the tests is the real thing.

pub mod contract;
pub mod github;
pub mod openai;
pub mod pagerduty;
pub mod sentry;
pub mod server;
