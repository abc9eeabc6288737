//! Releases through `suture serve` with the real `sentry-sdk`: the service
//! learns each project's releases from the events, names each one's
//! commit (`GET /api/releases`), and diagnoses an error that is new in a
//! release against exactly that release's deploy, from the release before.

use std::time::Duration;

use serde_json::Value;
use tests::loop_support::report_crash;
use tests::serve_support::{Db, ServeHome, http};
use tests::{DAY, ScriptedRepo};

const PATIENCE: Duration = Duration::from_secs(120);
const DEV: &str = "Dev <dev@example.com>";

const ORDERS: &str = "def total(items):\n    return sum(item[\"price\"] for item in items)\n";
const USERS: &str = "def greet(user):\n    return \"Hello, \" + user[\"name\"]\n";
const USERS_BROKEN: &str = "def greet(user):\n    first = user[\"name\"].split()[0]\n    return \"Hello, \" + first.title()\n";
/// Error A, on every release: an order without a price.
const A: &str = "from shop import orders\n\norders.total([{\"cost\": 1}])\n";
/// Error B, new in 1.1: a user whose name is empty.
const B: &str = "from shop import users\n\nusers.greet({\"name\": \"\"})\n";

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs() as i64)
}

/// A shop whose release 1.0 (tag `v1.0`) is two commits old and whose
/// release 1.1 (tag `v1.1`) adds two more, the first of which breaks
/// `greet`. Answers the repository and the commits of 1.0 and 1.1.
pub(crate) fn shop() -> (ScriptedRepo, String, String) {
    let repo = ScriptedRepo::new();
    repo.commit(
        DEV,
        now() - 20 * DAY,
        "Initial shop",
        &[
            ("shop/__init__.py", Some("")),
            ("shop/orders.py", Some(ORDERS)),
            ("shop/users.py", Some(USERS)),
            ("a.py", Some(A)),
            ("b.py", Some(B)),
        ],
    );
    let v10 = repo.commit(
        DEV,
        now() - 10 * DAY,
        "readme",
        &[("README.md", Some("# shop\n"))],
    );
    repo.commit(
        DEV,
        now() - 5 * DAY,
        "users: greet by first name",
        &[("shop/users.py", Some(USERS_BROKEN))],
    );
    let v11 = repo.commit(
        DEV,
        now() - 4 * DAY,
        "readme: how to run",
        &[("README.md", Some("# shop\n\npython a.py\n"))],
    );
    let git = git2::Repository::open(repo.path()).unwrap();
    for (tag, id) in [("v1.0", v10), ("v1.1", v11)] {
        git.tag_lightweight(tag, &git.find_object(id, None).unwrap(), false)
            .unwrap();
    }
    (repo, v10.to_string(), v11.to_string())
}

fn the_window_is_the_deploy_diff_on(db: Db) {
    let (repo, v10, v11) = shop();
    let config = format!(
        "[queue]\npoll_millis = 100\nbackoff_seconds = 1\n\
         [[repos]]\nname = \"shop\"\npath = \"{}\"\nmode = \"observe\"\ndays = 30\nlearning_seconds = 0\n",
        repo.path().display()
    );
    let home = ServeHome::new(db, &config);
    let serve = home.start(&[("SUTURE_LLM_BASE_URL", "")]);

    // Error A on 1.0, twice; then B, first seen on 1.1; then A on 1.1.
    report_crash(&serve.dsn, repo.path(), "a.py", "shop@1.0");
    report_crash(&serve.dsn, repo.path(), "a.py", "shop@1.0");
    report_crash(&serve.dsn, repo.path(), "b.py", "shop@1.1");
    report_crash(&serve.dsn, repo.path(), "a.py", "shop@1.1");

    let listed = serve.wait_json("/api/incidents", PATIENCE, |list| {
        list["incidents"].as_array().map_or(0, Vec::len) == 2
            && list["incidents"]
                .as_array()
                .unwrap()
                .iter()
                .map(|incident| incident["count"].as_i64().unwrap_or(0))
                .sum::<i64>()
                == 4
    });
    let id_of = |needle: &str| {
        listed["incidents"]
            .as_array()
            .unwrap()
            .iter()
            .find(|incident| incident["title"].as_str().unwrap_or("").contains(needle))
            .unwrap_or_else(|| panic!("no incident titled {needle}: {listed:#}"))["id"]
            .as_i64()
            .unwrap()
    };
    let diagnosed = |id: i64| {
        serve.wait_json(&format!("/api/incidents/{id}"), PATIENCE, |incident| {
            incident["state"] == "diagnosed" || incident["state"] == "failed"
        })
    };

    let b = diagnosed(id_of("IndexError"));
    assert_eq!(b["state"], "diagnosed", "{b:#}");
    let window = &b["diagnosis"]["window"];
    assert_eq!(window["source"], "releases", "{b:#}");
    assert_eq!(window["base"], v10.as_str(), "{window:#}");
    assert_eq!(window["commits"], 2, "the two commits of 1.1: {window:#}");
    assert_eq!(window["releases"]["previous"], "shop@1.0");
    assert_eq!(window["releases"]["release"], "shop@1.1");
    assert_eq!(b["diagnosis"]["revision"], v11.as_str());
    assert_eq!(
        b["diagnosis"]["suspects"][0]["subject"], "users: greet by first name",
        "{b:#}"
    );

    // A arrived with 1.0, the project's first release: no deploy to diff.
    let a = diagnosed(id_of("KeyError"));
    assert_eq!(a["state"], "diagnosed", "{a:#}");
    assert_eq!(a["diagnosis"]["window"]["source"], "days", "{a:#}");
    assert_eq!(a["diagnosis"]["window"]["days"], 30);

    let releases = serve.get_json("/api/releases?project=1");
    let listed: Vec<(&str, i64, Option<&str>)> = releases["releases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|release| {
            (
                release["release"].as_str().unwrap(),
                release["events"].as_i64().unwrap(),
                release["commit"].as_str(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        vec![
            ("shop@1.0", 2, Some(v10.as_str())),
            ("shop@1.1", 2, Some(v11.as_str()))
        ],
        "{releases:#}"
    );
    let first = &releases["releases"][0];
    assert!(
        first["first_seen"].as_str() < first["last_seen"].as_str(),
        "{releases:#}"
    );

    for (path, says) in [
        ("/api/releases", "missing project"),
        ("/api/releases?project=", "project must be"),
        (
            "/api/releases?project=1%27%20OR%201=1",
            "project may hold only",
        ),
        ("/api/releases?project=1&limit=many", "limit"),
    ] {
        let (status, body) = http(serve.addr, "GET", path, &[], b"");
        let body = String::from_utf8_lossy(&body);
        assert_eq!(status, 400, "{path}: {body}");
        assert!(body.contains(says), "{path}: {body}");
    }
    let none: Value = serve.get_json("/api/releases?project=7");
    assert_eq!(none["releases"], serde_json::json!([]), "{none:#}");
}

#[test]
fn the_window_is_the_deploy_diff() {
    the_window_is_the_deploy_diff_on(Db::Sqlite);
}

#[test]
fn the_window_is_the_deploy_diff_on_postgres() {
    the_window_is_the_deploy_diff_on(Db::Postgres);
}
