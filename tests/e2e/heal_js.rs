//! `suture heal` on a small JavaScript project (ES modules, `node --test`),
//! with the event reported by the real `@sentry/node`.

use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;
use tests::{DAY, ScriptedRepo, capture_node_event, suture_bin};

const LIB: &str = "export function total(items) {\n  return items.map((item) => item.cost * item.qty).reduce((sum, n) => sum + n, 0);\n}\n\nexport function label(item) {\n  return `${item.name} x${item.qty}`;\n}\n";
const TEST: &str = "import { test } from \"node:test\";\nimport assert from \"node:assert/strict\";\nimport { total, label } from \"../lib.js\";\n\ntest(\"total of an empty cart is zero\", () => {\n  assert.equal(total([]), 0);\n});\n\ntest(\"total\", () => {\n  assert.equal(total([{ cost: 2, qty: 3 }]), 6);\n});\n\ntest(\"label\", () => {\n  assert.equal(label({ name: \"pen\", qty: 2 }), \"pen x2\");\n});\n";
const MAIN: &str = "import { total } from \"./lib.js\";\n\nexport function checkout(cart) {\n  return total(cart);\n}\n\ncheckout([]);\n";

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// The culprit drops `reduce`'s initial value; innocent commits touch the
/// same file and the docs. The revert is proven with `node --test`.
#[test]
fn javascript_revert_is_proven() {
    let repo = ScriptedRepo::new();
    repo.commit(
        "Ada <ada@cart.test>",
        now() - 30 * DAY,
        "Initial cart",
        &[
            ("package.json", Some("{\n  \"name\": \"cart\",\n  \"type\": \"module\",\n  \"scripts\": { \"test\": \"node --test\" }\n}\n")),
            ("lib.js", Some(LIB)),
            ("test/lib.test.js", Some(TEST)),
            ("main.js", Some(MAIN)),
        ],
    );
    let with_discount =
        format!("{LIB}\nexport function discount(amount) {{\n  return amount * 0.9;\n}}\n");
    repo.commit(
        "Bo <bo@cart.test>",
        now() - 5 * DAY,
        "lib: add discount",
        &[("lib.js", Some(&with_discount))],
    );
    let bad = with_discount.replace(
        ".reduce((sum, n) => sum + n, 0)",
        ".reduce((sum, n) => sum + n)",
    );
    let culprit = repo.commit(
        "Cy <cy@cart.test>",
        now() - 2 * DAY,
        "lib: tidy total",
        &[("lib.js", Some(&bad))],
    );
    repo.commit(
        "Di <di@cart.test>",
        now() - DAY,
        "docs",
        &[("README.md", Some("# cart\n"))],
    );

    let event_path = repo.path().join(".git/event.json");
    let event = capture_node_event(
        repo.path(),
        "main.js",
        Some(&repo.head().to_string()),
        &event_path,
    );
    assert_eq!(event["exception"]["values"][0]["type"], "TypeError");
    assert_eq!(event["sdk"]["name"], "sentry.javascript.node");

    let out = tempfile::tempdir().unwrap();
    let output = Command::new(suture_bin())
        .args(["heal", "--repo"])
        .arg(repo.path())
        .arg("--event")
        .arg(&event_path)
        .args(["--test-cmd", "node --test", "--out"])
        .arg(out.path())
        .arg("--json")
        .env_remove("SUTURE_LLM_BASE_URL")
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&output.stderr)));
    assert_eq!(output.status.code(), Some(0), "{report:#}");
    assert_eq!(report["outcome"], "proven");
    assert_eq!(report["strategy"], "revert");
    assert_eq!(report["culprit"], culprit.to_string());
    let frames = report["diagnosis"]["frames"].as_array().unwrap();
    let crash = frames.iter().find(|f| f["in_app"] == true).unwrap();
    assert_eq!(crash["path"], "lib.js");
    assert_eq!(crash["symbol"], "total");
    assert_eq!(
        frames[0]["function"], "Array.reduce",
        "the runtime's own frame stays on top"
    );
    assert_ne!(report["tests"]["baseline"]["exit"], 0);
    assert_eq!(report["tests"]["patched"]["exit"], 0);
    let patch = std::fs::read_to_string(out.path().join("fix.patch")).unwrap();
    assert!(
        patch.contains(
            "+  return items.map((item) => item.cost * item.qty).reduce((sum, n) => sum + n, 0);"
        ),
        "{patch}"
    );
    assert!(repo.is_clean());
}
