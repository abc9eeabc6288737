//! `suture diagnose` on a small Python shop whose history has a bad commit
//! among innocent ones by other authors that touch the same files; the
//! events come from the real `sentry-sdk` catching the real crash.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;
use tests::{DAY, ScriptedRepo, capture_python_event, suture, suture_json};

const PRICING: &str = r#""""Prices and discounts."""

RATES = {"SPRING": 0.9, "VIP": 0.8}


def discount(code):
    """Multiplier for a discount code; 1.0 when the code is unknown."""
    return RATES.get(code, 1.0)


def tax(amount):
    return round(amount * 0.2, 2)
"#;

const CART: &str = r#""""Shopping cart."""

from shop.pricing import discount, tax


class Cart:
    def __init__(self, items):
        self.items = items

    def subtotal(self):
        return sum(price * qty for price, qty in self.items)

    def first_price(self):
        if not self.items:
            return 0.0
        return self.items[0][0]

    def total(self, code):
        amount = self.subtotal()
        amount = amount * discount(code)
        return amount + tax(amount)
"#;

const ALICE: &str = "Alice Moreau <alice@shop.test>";
const BOB: &str = "Bob Nakamura <bob@shop.test>";
const CAROL: &str = "Carol Diaz <carol@shop.test>";
const DAVE: &str = "Dave Okoye <dave@shop.test>";

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// The shop as it was two months ago, plus the program that crashes.
fn shop(main: &str) -> ScriptedRepo {
    let repo = ScriptedRepo::new();
    repo.commit(
        ALICE,
        now() - 60 * DAY,
        "Initial shop",
        &[
            ("shop/__init__.py", Some("")),
            ("shop/pricing.py", Some(PRICING)),
            ("shop/cart.py", Some(CART)),
            ("app.py", Some(main)),
            ("README.md", Some("# shop\n")),
        ],
    );
    repo
}

const CHECKOUT: &str = "from shop.cart import Cart\n\n\ndef checkout():\n    cart = Cart([(10.0, 2), (5.0, 1)])\n    return cart.total(\"WELCOME\")\n\n\ncheckout()\n";
const FIRST_PRICE: &str =
    "from shop.cart import Cart\n\n\ndef show():\n    return Cart([]).first_price()\n\n\nshow()\n";

/// Innocent work by other authors in the same files, in the window.
fn innocent_same_files(repo: &ScriptedRepo, days_ago: i64) {
    let cart = CART.replace(
        "    def total(self, code):",
        "    def count(self):\n        return sum(qty for _, qty in self.items)\n\n    def total(self, code):",
    );
    repo.commit(
        CAROL,
        now() - days_ago * DAY,
        "cart: add item count",
        &[("shop/cart.py", Some(&cart))],
    );
    let pricing = PRICING.replace(
        "round(amount * 0.2, 2)",
        "round(amount * 0.2, 2)  # flat VAT",
    );
    repo.commit(
        DAVE,
        now() - (days_ago - 1) * DAY,
        "pricing: document the VAT rate",
        &[
            ("shop/pricing.py", Some(&pricing)),
            ("README.md", Some("# shop\n\nA cart.\n")),
        ],
    );
}

fn diagnose(repo: &ScriptedRepo, event: &Value, extra: &[&str]) -> Value {
    let event_path = repo.path().join(".git/event.json");
    std::fs::write(&event_path, event.to_string()).unwrap();
    let repo_path = repo.path().to_str().unwrap().to_string();
    let event_arg = event_path.to_str().unwrap().to_string();
    let mut args = vec!["diagnose", "--repo", &repo_path, "--event", &event_arg];
    args.extend_from_slice(extra);
    suture_json(&args)
}

fn crash(repo: &ScriptedRepo) -> Value {
    let out = repo.path().join(".git/captured.json");
    let head = repo.head().to_string();
    capture_python_event(repo.path(), "app.py", Some(&head), &out)
}

fn suspects(diagnosis: &Value) -> Vec<String> {
    diagnosis["suspects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["commit"].as_str().unwrap().to_string())
        .collect()
}

/// The culprit makes a callee return None; the crash is one call later in
/// `Cart.total`, which no window commit touched. A sibling method and the
/// module of the callee changed innocently around it.
#[test]
fn culprit_changed_a_function_called_on_the_crash_line() {
    let repo = shop(CHECKOUT);
    innocent_same_files(&repo, 6);
    let bad = repo
        .read("shop/pricing.py")
        .replace("RATES.get(code, 1.0)", "RATES.get(code)");
    let culprit = repo.commit(
        BOB,
        now() - 3 * DAY,
        "pricing: simplify rate lookup",
        &[("shop/pricing.py", Some(&bad))],
    );
    repo.commit(
        ALICE,
        now() - 2 * DAY,
        "docs: usage",
        &[("README.md", Some("# shop\n\nUsage: app.py\n"))],
    );
    let event = crash(&repo);
    assert_eq!(event["exception"]["values"][0]["type"], "TypeError");

    let diagnosis = diagnose(&repo, &event, &[]);
    assert_eq!(
        suspects(&diagnosis)[0],
        culprit.to_string(),
        "{diagnosis:#}"
    );
    assert_eq!(diagnosis["culprit"], culprit.to_string(), "{diagnosis:#}");
    assert!(diagnosis["confidence"].as_f64().unwrap() >= 0.5);
    assert_eq!(diagnosis["revision_source"], "release");
    let top = &diagnosis["locations"][0];
    assert_eq!(top["path"], "shop/pricing.py", "{diagnosis:#}");
    assert_eq!(top["symbol"], "discount");
    let crash_frame = &diagnosis["frames"][0];
    assert_eq!(crash_frame["path"], "shop/cart.py");
    assert_eq!(crash_frame["symbol"], "Cart.total");
    assert_eq!(crash_frame["in_app"], true);
    assert!(repo.is_clean());
}

/// The culprit removes a guard; the crashing line itself is older than the
/// window, but its function changed.
#[test]
fn culprit_removed_a_guard_in_the_crashing_function() {
    let repo = shop(FIRST_PRICE);
    innocent_same_files(&repo, 8);
    let cart = repo
        .read("shop/cart.py")
        .replace("        if not self.items:\n            return 0.0\n", "");
    let culprit = repo.commit(
        BOB,
        now() - 2 * DAY,
        "cart: drop redundant emptiness check",
        &[("shop/cart.py", Some(&cart))],
    );
    let event = crash(&repo);
    assert_eq!(event["exception"]["values"][0]["type"], "IndexError");

    let diagnosis = diagnose(&repo, &event, &[]);
    assert_eq!(
        suspects(&diagnosis)[0],
        culprit.to_string(),
        "{diagnosis:#}"
    );
    let evidence = &diagnosis["suspects"][0]["evidence"][0];
    assert_eq!(evidence["kind"], "adjacent", "{diagnosis:#}");
    assert_eq!(evidence["symbol"], "Cart.first_price");
    assert_eq!(diagnosis["locations"][0]["symbol"], "Cart.first_price");
    assert_eq!(diagnosis["culprit"], culprit.to_string());
}

/// A young repository: the commit that created the files is inside the
/// window and wrote every line of the stack. The guard removed days ago
/// right above the crashing line is the culprit, not the file's creation.
#[test]
fn culprit_removed_a_guard_in_a_file_created_within_the_window() {
    let (repo, culprit) = crate::heal::inventory();
    let out = repo.path().join(".git/captured.json");
    let event = capture_python_event(repo.path(), "main.py", Some(&repo.head().to_string()), &out);
    let diagnosis = diagnose(&repo, &event, &["--days", "60"]);
    assert_eq!(diagnosis["window"]["commits"], 4, "{diagnosis:#}");
    assert_eq!(diagnosis["culprit"], culprit, "{diagnosis:#}");
    let top = &diagnosis["suspects"][0]["evidence"][0];
    assert_eq!(top["kind"], "adjacent", "{diagnosis:#}");
    assert_eq!(top["symbol"], "parse_quantity");
    let creation = &diagnosis["suspects"][1];
    assert_eq!(creation["subject"], "Initial inventory", "{diagnosis:#}");
    assert!(
        creation["evidence"]
            .as_array()
            .unwrap()
            .iter()
            .all(|item| item["kind"] == "created" || item["kind"] == "file"),
        "{diagnosis:#}"
    );
}

/// The culprit rewrote the very line that raises.
#[test]
fn culprit_rewrote_the_raising_line() {
    let repo = shop(CHECKOUT);
    innocent_same_files(&repo, 9);
    let cart = repo.read("shop/cart.py").replace(
        "amount = amount * discount(code)",
        "amount = amount * RATES[code]",
    );
    let cart = cart.replace(
        "from shop.pricing import discount, tax",
        "from shop.pricing import RATES, discount, tax",
    );
    let culprit = repo.commit(
        CAROL,
        now() - 4 * DAY,
        "cart: read rates directly",
        &[("shop/cart.py", Some(&cart))],
    );
    repo.commit(
        DAVE,
        now() - DAY,
        "docs",
        &[("README.md", Some("# shop\n\nv2\n"))],
    );
    let event = crash(&repo);
    assert_eq!(event["exception"]["values"][0]["type"], "KeyError");

    let diagnosis = diagnose(&repo, &event, &[]);
    assert_eq!(
        suspects(&diagnosis)[0],
        culprit.to_string(),
        "{diagnosis:#}"
    );
    assert_eq!(diagnosis["suspects"][0]["evidence"][0]["kind"], "line");
    assert_eq!(diagnosis["frames"][0]["blamed_commit"], culprit.to_string());
    assert!(diagnosis["confidence"].as_f64().unwrap() > 0.7);
}

/// The bug is older than the window: recent commits touched the same class
/// but not the crashing function, so there is a lead but no culprit.
#[test]
fn frame_lines_older_than_the_window_give_no_culprit() {
    let broken = CART.replace("        if not self.items:\n            return 0.0\n", "");
    let repo = ScriptedRepo::new();
    repo.commit(
        ALICE,
        now() - 90 * DAY,
        "Initial shop",
        &[
            ("shop/__init__.py", Some("")),
            ("shop/pricing.py", Some(PRICING)),
            ("shop/cart.py", Some(&broken)),
            ("app.py", Some(FIRST_PRICE)),
        ],
    );
    let cart = broken.replace(
        "    def total(self, code):",
        "    def count(self):\n        return len(self.items)\n\n    def total(self, code):",
    );
    repo.commit(
        CAROL,
        now() - 3 * DAY,
        "cart: add count",
        &[("shop/cart.py", Some(&cart))],
    );
    repo.commit(
        DAVE,
        now() - 2 * DAY,
        "pricing: tweak",
        &[("shop/pricing.py", Some(&PRICING.replace("0.9", "0.85")))],
    );
    let event = crash(&repo);

    let diagnosis = diagnose(&repo, &event, &[]);
    assert_eq!(diagnosis["culprit"], Value::Null, "{diagnosis:#}");
    assert!(
        diagnosis["confidence"].as_f64().unwrap() < 0.5,
        "{diagnosis:#}"
    );
    assert_eq!(diagnosis["frames"][0]["blamed_commit"], Value::Null);
    // The crashing function is still the first place to look.
    assert_eq!(diagnosis["locations"][0]["symbol"], "Cart.first_price");
}

/// `--since` moves the window past the culprit: no false culprit.
#[test]
fn since_excludes_older_commits() {
    let repo = shop(FIRST_PRICE);
    let cart = CART.replace("        if not self.items:\n            return 0.0\n", "");
    repo.commit(
        BOB,
        now() - 3 * DAY,
        "cart: drop check",
        &[("shop/cart.py", Some(&cart))],
    );
    let docs = repo.commit(
        DAVE,
        now() - 2 * DAY,
        "docs",
        &[("README.md", Some("# shop\n\nv2\n"))],
    );
    let event = crash(&repo);
    let docs = docs.to_string();

    let diagnosis = diagnose(&repo, &event, &["--since", &docs]);
    assert_eq!(diagnosis["window"]["commits"], 0);
    assert!(suspects(&diagnosis).is_empty());
    assert_eq!(diagnosis["confidence"], 0.0);
}

/// A crash entirely outside the application (a script elsewhere calling the
/// standard library) maps no frame to the repository.
#[test]
fn frames_outside_the_app_give_no_suspect() {
    let repo = shop(CHECKOUT);
    innocent_same_files(&repo, 5);
    let elsewhere = tempfile::tempdir().unwrap();
    std::fs::write(
        elsewhere.path().join("job.py"),
        "import json\n\n\ndef run():\n    return json.dumps({1j: 2})\n\n\nrun()\n",
    )
    .unwrap();
    let out = elsewhere.path().join("event.json");
    let event = capture_python_event(elsewhere.path(), "job.py", None, &out);

    let diagnosis = diagnose(&repo, &event, &[]);
    assert!(suspects(&diagnosis).is_empty(), "{diagnosis:#}");
    assert_eq!(diagnosis["confidence"], 0.0);
    let frames = diagnosis["frames"].as_array().unwrap();
    assert!(!frames.is_empty());
    assert!(
        frames
            .iter()
            .all(|f| f["in_app"] == false && f["path"].is_null()),
        "{diagnosis:#}"
    );
    assert!(
        frames
            .iter()
            .any(|f| f["library"] == "python standard library")
    );
}

/// The human summary names the culprit, its author and the evidence.
#[test]
fn human_output_lists_suspects_with_evidence() {
    let repo = shop(FIRST_PRICE);
    let cart = CART.replace("        if not self.items:\n            return 0.0\n", "");
    let culprit = repo.commit(
        BOB,
        now() - 2 * DAY,
        "cart: drop redundant emptiness check",
        &[("shop/cart.py", Some(&cart))],
    );
    let event = crash(&repo);
    let event_path = repo.path().join(".git/event.json");
    std::fs::write(&event_path, event.to_string()).unwrap();

    let output = suture(&[
        "diagnose",
        "--repo",
        repo.path().to_str().unwrap(),
        "--event",
        event_path.to_str().unwrap(),
    ]);
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    let short = &culprit.to_string()[..10];
    assert!(text.contains(&format!("culprit {short}")), "{text}");
    assert!(
        text.contains("Bob Nakamura <bob@shop.test>  cart: drop redundant emptiness check"),
        "{text}"
    );
    assert!(text.contains("shop/cart.py:"), "{text}");
    assert!(text.contains("Cart.first_price"), "{text}");
}

const SESSION: &str = r#""""User sessions."""

import time

IDLE_LIMIT = 600


class Session:
    def __init__(self, user, started=None):
        self.user = user
        self.started = started or time.time()
        self.pages = []

    def visit(self, page):
        self.pages.append(page)
        return len(self.pages)

    def expired(self, now):
        return now - self.started > IDLE_LIMIT

    def describe(self):
        return "%s (%d pages)" % (self.user, len(self.pages))
"#;

/// The culprit changes how the constructor sets an attribute; the crash is
/// later, in another method of the same class that reads it. An innocent
/// commit changes a different method of that class. The culprit is named
/// because its change writes the state the crash line reads.
#[test]
fn culprit_changed_state_the_crash_line_reads() {
    let repo = ScriptedRepo::new();
    let main = "from app.session import Session\n\n\ndef sweep():\n    return Session(\"ana\").expired(10_000)\n\n\nsweep()\n";
    repo.commit(
        ALICE,
        now() - 50 * DAY,
        "Initial sessions",
        &[
            ("app/__init__.py", Some("")),
            ("app/session.py", Some(SESSION)),
            ("main.py", Some(main)),
        ],
    );
    let described = SESSION.replace(
        "\"%s (%d pages)\" % (self.user, len(self.pages))",
        "f\"{self.user} ({len(self.pages)} pages)\"",
    );
    repo.commit(
        CAROL,
        now() - 6 * DAY,
        "session: f-string in describe",
        &[("app/session.py", Some(&described))],
    );
    let bad = described.replace(
        "self.started = started or time.time()",
        "self.started = started",
    );
    let culprit = repo.commit(
        BOB,
        now() - 3 * DAY,
        "session: let callers pass the start time",
        &[("app/session.py", Some(&bad))],
    );
    let visited = bad.replace(
        "        self.pages.append(page)\n",
        "        if page not in self.pages:\n            self.pages.append(page)\n",
    );
    repo.commit(
        DAVE,
        now() - DAY,
        "session: count distinct pages",
        &[("app/session.py", Some(&visited))],
    );
    let out = repo.path().join(".git/captured.json");
    let event = capture_python_event(repo.path(), "main.py", Some(&repo.head().to_string()), &out);
    assert_eq!(event["exception"]["values"][0]["type"], "TypeError");

    let diagnosis = diagnose(&repo, &event, &[]);
    assert_eq!(
        suspects(&diagnosis)[0],
        culprit.to_string(),
        "{diagnosis:#}"
    );
    assert_eq!(diagnosis["culprit"], culprit.to_string(), "{diagnosis:#}");
    let kinds: Vec<&str> = diagnosis["suspects"][0]["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"class") && kinds.contains(&"identifier"),
        "{kinds:?}"
    );
    assert_eq!(
        diagnosis["locations"][0]["symbol"], "Session.__init__",
        "{diagnosis:#}"
    );
}
