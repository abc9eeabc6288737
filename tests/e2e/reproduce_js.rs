//! Reproduce before repair, for JavaScript: the real `@sentry/node` reports
//! a crash with the crash frame's local variables, `suture heal` writes a
//! replay test from them that fails at the deployed revision the way
//! production failed, reverts the culprit, and ships the test with the fix.
//!
//! The suite is green at HEAD: only production's arguments (a number where
//! the tests pass strings) break the code, so nothing but the replay can
//! reproduce the error.
//!
//! The TypeError is thrown by the function's own code, not inside a
//! builtin it calls: @sentry/node (10.x) pairs the inspector's call frames
//! with the stack trace's frames by position, and V8's inspector has no
//! frame for a builtin such as `Array.prototype.reduce` that `Error.stack`
//! lists, so a crash inside `reduce` reaches suture with no `vars` at all.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use tests::loop_support::branch_head;
use tests::serve_support::{Db, ServeHome, event_envelope, http, sentry_auth};
use tests::{DAY, ScriptedRepo, suture_bin};

/// How the project's modules are written.
#[derive(Clone, Copy)]
enum Modules {
    Esm,
    CommonJs,
}

impl Modules {
    fn package_json(self, test_script: &str) -> String {
        let kind = match self {
            Modules::Esm => "  \"type\": \"module\",\n",
            Modules::CommonJs => "",
        };
        format!(
            "{{\n  \"name\": \"sku\",\n  \"version\": \"1.0.0\",\n{kind}  \"scripts\": {{ \"test\": \"{test_script}\" }}\n}}\n"
        )
    }

    /// `lib.js` with `functions` (one `function …` per entry), exported.
    fn lib(self, functions: &[&str]) -> String {
        let names: Vec<&str> = functions
            .iter()
            .map(|f| f.trim_start_matches("function ").split('(').next().unwrap())
            .collect();
        match self {
            Modules::Esm => functions
                .iter()
                .map(|f| format!("export {f}"))
                .collect::<Vec<_>>()
                .join("\n"),
            Modules::CommonJs => format!(
                "{}\nmodule.exports = {{ {} }};\n",
                functions.join("\n"),
                names.join(", ")
            ),
        }
    }

    fn import(self, names: &str, from: &str) -> String {
        match self {
            Modules::Esm => format!("import {{ {names} }} from \"{from}\";\n"),
            Modules::CommonJs => format!("const {{ {names} }} = require(\"{from}\");\n"),
        }
    }

    fn test_prelude(self) -> String {
        match self {
            Modules::Esm => {
                "import { test } from \"node:test\";\nimport assert from \"node:assert/strict\";\n"
                    .to_string()
            }
            Modules::CommonJs => {
                "const { test } = require(\"node:test\");\nconst assert = require(\"node:assert/strict\");\n"
                    .to_string()
            }
        }
    }
}

const CODE: &str = "function code(prefix, number, width) {\n  return `${prefix.toUpperCase()}-${String(number).padStart(width, \"0\")}`;\n}\n";
const BROKEN_CODE: &str = "function code(prefix, number, width) {\n  return `${prefix.toUpperCase()}-${number.padStart(width, \"0\")}`;\n}\n";
const SLUG: &str =
    "function slug(name) {\n  return name.trim().toLowerCase().replace(/\\s+/g, \"-\");\n}\n";
/// The line the revert brings back.
const FIXED_LINE: &str =
    "+  return `${prefix.toUpperCase()}-${String(number).padStart(width, \"0\")}`;";

/// How long the service may take to settle an incident.
const PATIENCE: Duration = Duration::from_secs(180);

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A project whose suite passes at every commit: the tests call `code`
/// with strings, production with a number. The culprit drops `String()`
/// around the number; innocent commits add a function, a test and docs.
/// Returns the repository and the culprit.
fn sku_project(modules: Modules, test_script: &str) -> (ScriptedRepo, String) {
    let repo = ScriptedRepo::new();
    let prelude = modules.test_prelude();
    let tests = format!(
        "{prelude}{}\ntest(\"codes are padded\", () => {{\n  assert.equal(code(\"sku\", \"42\", 5), \"SKU-00042\");\n}});\n",
        modules.import("code", "../lib.js")
    );
    let main = format!(
        "{}\n// The nightly export: product 42 of the catalogue.\ncode(\"sku\", 42, 5);\n",
        modules.import("code", "./lib.js")
    );
    repo.commit(
        "Ada <ada@sku.test>",
        now() - 30 * DAY,
        "Initial sku codes",
        &[
            ("package.json", Some(&modules.package_json(test_script))),
            ("lib.js", Some(&modules.lib(&[CODE]))),
            ("test/lib.test.js", Some(&tests)),
            ("main.js", Some(&main)),
        ],
    );
    repo.commit(
        "Bo <bo@sku.test>",
        now() - 6 * DAY,
        "lib: slugs for product names",
        &[("lib.js", Some(&modules.lib(&[CODE, SLUG])))],
    );
    let culprit = repo.commit(
        "Cy <cy@sku.test>",
        now() - 3 * DAY,
        "lib: numbers arrive as strings, drop the conversion",
        &[("lib.js", Some(&modules.lib(&[BROKEN_CODE, SLUG])))],
    );
    let slug_tests = format!(
        "{prelude}{}\ntest(\"slugs\", () => {{\n  assert.equal(slug(\"  Blue Pen \"), \"blue-pen\");\n}});\n",
        modules.import("slug", "../lib.js")
    );
    repo.commit(
        "Di <di@sku.test>",
        now() - 2 * DAY,
        "test: slugs",
        &[("test/slug.test.js", Some(&slug_tests))],
    );
    repo.commit(
        "Ed <ed@sku.test>",
        now() - DAY,
        "docs",
        &[("README.md", Some("# sku\n\nRun main.js nightly.\n"))],
    );
    (repo, culprit.to_string())
}

/// Runs `program` under the real `@sentry/node` with local variables on
/// (tests/support/capture_event_locals.mjs) and returns the first event
/// whose crash frame carries them.
fn capture_with_locals(repo: &ScriptedRepo, program: &str) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("support/capture_event_locals.mjs");
    let modules = std::env::var("SUTURE_TEST_NODE_MODULES").unwrap_or_else(|_| {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../target/test-node/node_modules")
            .display()
            .to_string()
    });
    let out = repo.path().join(".git/captured.json");
    let output = Command::new("node")
        .arg("--no-warnings")
        .arg(&script)
        .arg(program)
        .arg(&out)
        .current_dir(repo.path())
        .env("NODE_PATH", &modules)
        .env("SUTURE_TEST_RELEASE", repo.head().to_string())
        .env_remove("NODE_OPTIONS")
        .output()
        .expect("running node");
    assert!(
        output.status.success(),
        "capturing an event with @sentry/node's local variables failed (the README's test command installs the SDK): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(&std::fs::read_to_string(&out).expect("event written"))
        .expect("event JSON")
}

/// The innermost application frame of the event's exception.
fn crash_frame(event: &Value) -> &Value {
    event["exception"]["values"]
        .as_array()
        .and_then(|values| values.last())
        .and_then(|value| value["stacktrace"]["frames"].as_array())
        .and_then(|frames| frames.iter().rev().find(|f| f["in_app"] == true))
        .unwrap_or_else(|| panic!("no application frame in {event:#}"))
}

fn heal(repo: &ScriptedRepo, event: &Value, test_cmd: &str, out: &Path) -> (Option<i32>, Value) {
    let event_path = repo.path().join(".git/event.json");
    std::fs::write(&event_path, event.to_string()).unwrap();
    let output = Command::new(suture_bin())
        .args(["heal", "--repo"])
        .arg(repo.path())
        .arg("--event")
        .arg(&event_path)
        .args(["--test-cmd", test_cmd, "--out"])
        .arg(out)
        .arg("--json")
        .env_remove("SUTURE_LLM_BASE_URL")
        .env_remove("SUTURE_LLM_MODEL")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let report: Value = serde_json::from_str(&stdout).unwrap_or_else(|error| {
        panic!(
            "no report ({error}): {stdout}\nstderr: {}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (output.status.code(), report)
}

fn run(program: &str, args: &[&str], cwd: &Path) -> Output {
    Command::new(program)
        .args(args)
        .current_dir(cwd)
        .env_remove("NODE_OPTIONS")
        .env_remove("NODE_PATH")
        .output()
        .unwrap_or_else(|e| panic!("running {program}: {e}"))
}

fn describe(output: &Output) -> String {
    format!(
        "exit {:?}\n{}{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The whole JavaScript acceptance: the event carries `vars`, the replay
/// test reproduces the TypeError in `code` at HEAD, the revert is proven
/// with it, and `fix.patch` alone (revert + test) turns a clean clone
/// green while its test alone fails at HEAD.
fn replay_reproduces_and_proves_the_revert(modules: Modules, test_cmd: &str) {
    let (repo, culprit) = sku_project(modules, "node --test");
    let head = repo.head();

    let event = capture_with_locals(&repo, "main.js");
    assert_eq!(event["sdk"]["name"], "sentry.javascript.node");
    let exception = &event["exception"]["values"][0];
    assert_eq!(exception["type"], "TypeError", "{event:#}");
    let frame = crash_frame(&event);
    assert_eq!(frame["function"], "code", "{frame:#}");
    assert_eq!(
        frame["vars"],
        json!({ "prefix": "sku", "number": 42, "width": 5 }),
        "the real LocalVariables integration reports the parameters: {frame:#}"
    );

    let out = tempfile::tempdir().unwrap();
    let (code, report) = heal(&repo, &event, test_cmd, out.path());
    assert_eq!(code, Some(0), "{report:#}");
    assert_eq!(report["outcome"], "proven", "{report:#}");
    assert_eq!(report["strategy"], "revert");
    assert_eq!(report["culprit"], culprit);
    assert_eq!(report["sandbox"], "bubblewrap");
    assert_eq!(
        report["tests"]["baseline"]["exit"], 0,
        "the suite is green at HEAD: only the replay reproduces the error"
    );

    let reproduction = &report["reproduction"];
    assert_eq!(reproduction["kind"], "replay", "{reproduction:#}");
    let test_file = reproduction["tests"][0]["file"]
        .as_str()
        .unwrap_or_else(|| panic!("the replay test's file: {reproduction:#}"))
        .to_owned();
    assert!(
        test_file.starts_with("test/") && test_file.ends_with(".test.js"),
        "the replay follows the repository's test naming: {test_file}"
    );
    let at_revision = &reproduction["at_revision"];
    assert_ne!(at_revision["exit"], 0, "{reproduction:#}");
    assert_eq!(at_revision["backend"], "bubblewrap");
    let failure = at_revision["output_tail"].as_str().unwrap();
    assert!(
        failure.contains("TypeError") && failure.contains("number.padStart is not a function"),
        "it fails as production did: {failure}"
    );
    assert_eq!(reproduction["with_fix"]["exit"], 0, "{reproduction:#}");
    assert_eq!(report["culprit_confirmed_by"], "reproduction");

    let patch = std::fs::read_to_string(out.path().join("fix.patch")).unwrap();
    assert!(patch.contains(FIXED_LINE), "the revert: {patch}");
    assert!(
        patch.contains(&format!("+++ b/{test_file}")),
        "the test ships with the fix: {patch}"
    );
    assert!(
        !patch
            .lines()
            .any(|l| (l.starts_with('+') || l.starts_with('-')) && l.contains("slug")),
        "only the culprit is undone: {patch}"
    );

    // fix.patch on its own, in a clean clone of the deployed revision.
    let clones = tempfile::tempdir().unwrap();
    let clone = clones.path().join("sku");
    let cloned = run(
        "git",
        &[
            "clone",
            "-q",
            repo.path().to_str().unwrap(),
            clone.to_str().unwrap(),
        ],
        clones.path(),
    );
    assert!(cloned.status.success(), "{}", describe(&cloned));
    let patch_path = out.path().join("fix.patch");
    let applied = run("git", &["apply", patch_path.to_str().unwrap()], &clone);
    assert!(applied.status.success(), "{}", describe(&applied));
    let fixed = run("node", &["--test"], &clone);
    assert!(
        fixed.status.success(),
        "the fixed clone is green: {}",
        describe(&fixed)
    );
    let listed = String::from_utf8_lossy(&fixed.stdout).into_owned();
    assert!(
        listed.contains("replays the production event"),
        "the replay test ran: {listed}"
    );
    // Back to HEAD's code, keeping only the new test: it fails as production did.
    let restored = run("git", &["checkout", "-q", "HEAD", "--", "."], &clone);
    assert!(restored.status.success(), "{}", describe(&restored));
    let alone = run("node", &["--test", &test_file], &clone);
    assert!(!alone.status.success(), "{}", describe(&alone));
    let text = describe(&alone);
    assert!(
        text.contains("TypeError") && text.contains("number.padStart is not a function"),
        "{text}"
    );

    assert!(repo.is_clean());
    assert_eq!(repo.head(), head);
}

/// ES modules, `node --test`.
#[test]
fn the_js_replay_proves_the_revert_esm() {
    replay_reproduces_and_proves_the_revert(Modules::Esm, "node --test");
}

/// CommonJS, through the package's own `npm test` (whose script is
/// `node --test`).
#[test]
fn the_js_replay_proves_the_revert_commonjs_npm_test() {
    replay_reproduces_and_proves_the_revert(Modules::CommonJs, "npm test --silent");
}

/// The service takes the same crash, sent to its DSN as the SDK's event,
/// and the pull request it opens on the local forge carries the replay
/// test beside the revert and says the error was reproduced.
#[test]
fn the_pull_request_carries_the_js_regression_test() {
    let (repo, culprit) = sku_project(Modules::Esm, "node --test");
    let event = capture_with_locals(&repo, "main.js");
    assert!(crash_frame(&event)["vars"].is_object(), "{event:#}");

    let mut home = ServeHome::new(Db::Sqlite, "");
    home.config = format!(
        "[store]\ndata_dir = \"{}\"\n\
         [queue]\npoll_millis = 100\nbackoff_seconds = 1\n\
         [[repos]]\nname = \"sku\"\npath = \"{}\"\ntest_command = \"node --test\"\ndays = 30\nlearning_seconds = 0\n",
        home.data_dir().display(),
        repo.path().display(),
    );
    let serve = home.start(&[("SUTURE_LLM_BASE_URL", "")]);
    let event_id = event["event_id"].as_str().unwrap().to_owned();
    let (status, body) = http(
        serve.addr,
        "POST",
        "/api/1/envelope/",
        &[("X-Sentry-Auth", &sentry_auth(&serve.key()))],
        &event_envelope(&event_id, &event),
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let settled = serve.wait_json("/api/incidents/1", PATIENCE, |incident| {
        ["proposed", "failed", "unfixed"].contains(&incident["state"].as_str().unwrap_or(""))
    });
    assert_eq!(
        settled["state"],
        "proposed",
        "{settled:#}\n{}",
        serve.stderr()
    );

    let listed = Command::new(suture_bin())
        .args(["pr", "list", "--json", "--config"])
        .arg(home.dir.path().join("suture.toml"))
        .env_remove("SUTURE_DATABASE_URL")
        .output()
        .unwrap();
    assert!(listed.status.success(), "{}", describe(&listed));
    let pulls: Value = serde_json::from_slice(&listed.stdout).unwrap();
    let pull = &pulls[0];
    assert_eq!(pulls.as_array().map(Vec::len), Some(1), "{pulls:#}");
    assert_eq!(pull["strategy"], "revert");
    let labels: Vec<&str> = pull["labels"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(labels.contains(&"suture:reproduced"), "{labels:?}");
    assert!(!labels.contains(&"suture:unreproduced"), "{labels:?}");
    let body = pull["body"].as_str().unwrap_or_default();
    assert!(body.contains(&culprit[..10]), "{body}");

    // The fix branch in the bare remote holds the reverted code and the test.
    let remote = home.data_dir().join("forge/sku.git");
    let branch = pull["branch"].as_str().unwrap();
    let head = branch_head(&remote, branch).expect("the fix branch is in the remote");
    let bare = git2::Repository::open_bare(&remote).unwrap();
    let tree = bare
        .find_commit(git2::Oid::from_str(&head).unwrap())
        .unwrap()
        .tree()
        .unwrap();
    let file = |path: &str| -> Option<String> {
        let blob = tree
            .get_path(Path::new(path))
            .ok()?
            .to_object(&bare)
            .ok()?
            .peel_to_blob()
            .ok()?;
        Some(String::from_utf8_lossy(blob.content()).into_owned())
    };
    let lib = file("lib.js").unwrap();
    assert!(lib.contains("String(number).padStart"), "{lib}");
    let replay = file("test/lib_code_replay.test.js").unwrap_or_else(|| {
        panic!(
            "the branch has the replay test: {:#}",
            settled["reproduction"]
        )
    });
    assert!(replay.contains("replays the production event"), "{replay}");
    assert!(
        replay.contains(&event_id),
        "the test names its event: {replay}"
    );
}
