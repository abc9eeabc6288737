"""suture's unittest reporter: `python -m unittest ARGS` that also writes a
JSON report of every test, so the reproduction gate reads results from a
structure instead of the text output.

Usage: python unittest_report.py REPORT [ARGS of python -m unittest ...]

The console output is unittest's own (the result class extends
TextTestResult). The report is written when the run ends, however it ends
short of being killed (a crash in the run is recorded under "errors" and
re-raised). A subtest that fails is a test of its own; a failed
setUpClass/setUpModule is an error outside the tests:

{"version": 1,
 "tests": [{"id": "pkg.test_x.T.test_y", "file": "pkg/test_x.py" or null,
            "status": "passed" | "failed" | "errored" | "skipped",
            "failure": null or FAILURE}],
 "errors": [{"id": "setUpClass (pkg.test_x.T)", "failure": FAILURE}]}
FAILURE = {"type": "TypeError", "message": "str(exc), capped",
           "frames": [{"file": "...", "line": 3, "function": "f"}]}
frames are traceback.extract_tb of the raised exception, outermost first.
"""

import json
import os
import sys
import traceback
import unittest

MESSAGE_CAP = 4096
FRAME_CAP = 200


def failure(err):
    exc_type, exc, tb = err
    try:
        message = str(exc)
    except BaseException:  # str() of a hostile exception may raise
        message = "<unprintable>"
    frames = [
        {"file": f.filename, "line": f.lineno, "function": f.name}
        for f in traceback.extract_tb(tb)
    ]
    return {
        "type": getattr(exc_type, "__name__", None),
        "message": message[:MESSAGE_CAP],
        "frames": frames[-FRAME_CAP:],
    }


def source_file(test):
    """The test's file relative to the working directory, when known."""
    module = type(test).__module__
    if isinstance(test, unittest.loader._FailedTest):
        # The failed import's name is the test method's name, or the full
        # module name when the Loader below saw it.
        module = getattr(test, "suture_module", test._testMethodName)
    candidates = []
    loaded = sys.modules.get(module)
    if loaded is not None and getattr(loaded, "__file__", None):
        candidates.append(loaded.__file__)
    stem = module.replace(".", os.sep)
    for base in sys.path:
        base = base or os.getcwd()
        candidates.append(os.path.join(base, stem + ".py"))
        candidates.append(os.path.join(base, stem, "__init__.py"))
    for path in candidates:
        if os.path.isfile(path):
            relative = os.path.relpath(os.path.abspath(path))
            return None if relative.startswith("..") else relative
    return None


# A module that fails to import becomes a _FailedTest raising a new
# ImportError whose message holds the real error as text; keep the real one.
import_errors = {}
make_failed_import_test = unittest.loader._make_failed_import_test


def remember_import_error(name, suite_class):
    import_errors[name] = sys.exc_info()
    return make_failed_import_test(name, suite_class)


class Loader(unittest.TestLoader):
    """Loading a named module (`unittest tests/test_x.py`) that fails to
    import gives a _FailedTest named by the module's last component only
    (`test_x`); keep the full name, so the report names the test's file."""

    def loadTestsFromName(self, name, module=None):
        tests = super().loadTestsFromName(name, module)
        parts = name.split(".")
        for test in getattr(tests, "_tests", ()):
            failed = getattr(test, "_testMethodName", None)
            if isinstance(test, unittest.loader._FailedTest) and failed in parts:
                test.suture_module = ".".join(parts[: parts.index(failed) + 1])
        return tests


class Recorder(unittest.TextTestResult):
    tests = []
    errors_outside_tests = []

    def record(self, test, status, err=None):
        if isinstance(test, unittest.loader._FailedTest):
            err = import_errors.get(test._testMethodName, err)
        entry_failure = failure(err) if err is not None else None
        if isinstance(test, unittest.case._SubTest):
            test_id, owner = test.id(), test.test_case
        else:
            test_id, owner = test.id(), test
        if not isinstance(owner, unittest.TestCase):
            # setUpClass/setUpModule failures come as an _ErrorHolder.
            Recorder.errors_outside_tests.append(
                {"id": test_id, "failure": entry_failure}
            )
            return
        Recorder.tests.append(
            {
                "id": test_id,
                "file": source_file(owner),
                "status": status,
                "failure": entry_failure,
            }
        )

    def addSuccess(self, test):
        super().addSuccess(test)
        self.record(test, "passed")

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self.record(test, "failed", err)

    def addError(self, test, err):
        super().addError(test, err)
        self.record(test, "errored", err)

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        self.record(test, "skipped")

    def addExpectedFailure(self, test, err):
        super().addExpectedFailure(test, err)
        self.record(test, "skipped")

    def addUnexpectedSuccess(self, test):
        super().addUnexpectedSuccess(test)
        self.record(test, "failed")

    def addSubTest(self, test, subtest, err):
        super().addSubTest(test, subtest, err)
        if err is not None:
            failed = issubclass(err[0], test.failureException)
            self.record(subtest, "failed" if failed else "errored", err)


def write_report(path):
    report = {
        "version": 1,
        "tests": Recorder.tests,
        "errors": Recorder.errors_outside_tests,
    }
    directory = os.path.dirname(path)
    if directory:
        os.makedirs(directory, exist_ok=True)
    with open(path, "w", encoding="utf-8") as out:
        json.dump(report, out)


def main():
    if len(sys.argv) < 2:
        sys.exit("usage: unittest_report.py REPORT [unittest arguments]")
    report = os.path.abspath(sys.argv[1])
    # As under `python -m unittest`: the working directory is importable,
    # this file's directory is not.
    sys.path[0] = os.getcwd()
    unittest.loader._make_failed_import_test = remember_import_error
    runner = unittest.TextTestRunner(resultclass=Recorder)
    try:
        unittest.main(
            module=None,
            argv=["python -m unittest"] + sys.argv[2:],
            testRunner=runner,
            testLoader=Loader(),
        )
    except SystemExit:
        raise
    except BaseException:
        Recorder.errors_outside_tests.append(
            {"id": "<run>", "failure": failure(sys.exc_info())}
        )
        raise
    finally:
        write_report(report)


if __name__ == "__main__":
    main()
