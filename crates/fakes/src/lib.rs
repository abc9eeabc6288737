//! In-process fakes of the services suture cannot reach from a test machine,
//! speaking their real wire formats and checked against the official
//! contracts in `shared/contracts/`. Only services that cannot run here are
//! faked: everything else in the tests is the real thing.

pub mod openai;
