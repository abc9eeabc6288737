//! Writing a replay test: a test file that calls one function with the
//! values a production event recorded.
//!
//! Event values enter the file only as data: one JSON document, written as
//! a string literal in which every character that could end the literal,
//! start an escape or a comment (quotes, backslashes, newlines, `*/`,
//! `"""`) is itself escaped, and decoded when the test runs. Nothing from
//! the event is ever code: names in the file (module, class, function,
//! parameters) come from the code index of the repository, and are checked
//! to be plain identifiers before they are written.
