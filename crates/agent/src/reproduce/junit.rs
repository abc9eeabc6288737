//! Reading a test runner's JUnit XML report: which tests failed, with which
//! exception, raised where. The reproduction gate judges a test by this
//! report, never by grepping the runner's text output.
