//! The forge's tests: real git repositories in temp dirs, and in-process
//! fakes of GitHub, Sentry and PagerDuty that check every request and
//! answer against the services' published OpenAPI descriptions.

mod faults;
mod github;
mod http_push;
mod local;
mod secrets;
mod send;
mod shallow;
mod support;
mod upstream;
