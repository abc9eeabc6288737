//! Support for suture's end-to-end tests: scripted git histories in temp
//! dirs, real `sentry-sdk` events, and running the real `suture` binary.
//! The scenarios themselves are in `e2e/`.
