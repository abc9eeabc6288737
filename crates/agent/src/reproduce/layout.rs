//! Where a new test belongs in a repository: its test directory and naming
//! convention, so a reproduction test reads like one of the project's own.
