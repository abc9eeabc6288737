//! A small WebDriver client for the page scenarios: Debian's `chromedriver`
//! started on a free port, one headless Chromium session with a fresh
//! profile, and the few commands the scenarios use, over a hand-written
//! HTTP/1.1 exchange (WebDriver is JSON over HTTP/1.1; an HTTP client crate
//! would cost the tests' compile time). chromedriver answers
//! `Connection: close` without closing, so the body is read by its
//! `Content-Length`.
//!
//! Chromium's background services (component updates, sync, QUIC probes)
//! are switched off: on a closed network they fail and slow every page.
//! When Chromium or chromedriver is missing the scenario fails saying how
//! to install them; it never passes without a browser.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};
use tempfile::TempDir;

/// How long one WebDriver command may take, and chromedriver to start.
const COMMAND_LIMIT: Duration = Duration::from_secs(60);

/// One element, by its WebDriver reference.
#[derive(Debug, Clone)]
pub(crate) struct Element(String);

/// A headless Chromium driven over WebDriver; ends the session and the
/// driver when dropped.
pub(crate) struct Browser {
    driver: Child,
    addr: SocketAddr,
    session: String,
    _profile: TempDir,
}

/// `name` on `PATH`, if it is there.
fn on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

impl Browser {
    /// Starts chromedriver and a headless Chromium session.
    pub(crate) fn start() -> Browser {
        let missing = |what: &str| -> ! {
            panic!(
                "{what} is not installed: the page tests drive a real headless Chromium. \
                 Install Debian's `chromium` and `chromium-driver` (scripts/test does it as root: \
                 apt-get install chromium chromium-driver)"
            )
        };
        let chromium = ["chromium", "chromium-browser"]
            .iter()
            .find_map(|name| on_path(name))
            .unwrap_or_else(|| missing("chromium"));
        let chromedriver = on_path("chromedriver").unwrap_or_else(|| missing("chromedriver"));
        let profile = tempfile::Builder::new()
            .prefix("suture-chromium-")
            .tempdir()
            .unwrap();
        let port = free_port();
        let driver = Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(profile.path().join("chromedriver.log")).unwrap())
            .spawn()
            .unwrap_or_else(|error| panic!("starting {}: {error}", chromedriver.display()));
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let mut browser = Browser {
            driver,
            addr,
            session: String::new(),
            _profile: profile,
        };
        browser.wait_ready();
        let user_data = browser._profile.path().join("profile");
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--window-size=1280,900",
            &format!("--user-data-dir={}", user_data.display()),
        ];
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": chromium, "args": args},
        }}});
        let created = browser.raw("POST", "/session", Some(&capabilities));
        browser.session = created["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| {
                panic!(
                    "chromedriver made no session: {created:#}\n{}",
                    browser.log()
                )
            })
            .to_owned();
        browser
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + COMMAND_LIMIT;
        loop {
            if exchange(self.addr, "GET", "/status", "")
                .is_ok_and(|(status, body)| status == 200 && body["value"]["ready"] == true)
            {
                return;
            }
            if let Some(exit) = self.driver.try_wait().unwrap() {
                panic!("chromedriver exited with {exit}: {}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver did not get ready: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self._profile.path().join("chromedriver.log")).unwrap_or_default()
    }

    /// One request to chromedriver; its JSON answer, whatever the status.
    fn raw(&self, method: &str, path: &str, body: Option<&Value>) -> Value {
        let body = body.map(Value::to_string).unwrap_or_default();
        exchange(self.addr, method, path, &body)
            .unwrap_or_else(|error| {
                panic!("chromedriver: {method} {path}: {error}\n{}", self.log())
            })
            .1
    }

    /// A session command; its `value`, or `Err(error name, message)`.
    fn try_command(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, (String, String)> {
        let path = format!("/session/{}{path}", self.session);
        let body = match (method, body) {
            ("POST", None) => Some(json!({})),
            (_, body) => body,
        };
        let answer = self.raw(method, &path, body.as_ref());
        let value = answer["value"].clone();
        match value["error"].as_str() {
            Some(error) => Err((
                error.to_owned(),
                value["message"].as_str().unwrap_or_default().to_owned(),
            )),
            None => Ok(value),
        }
    }

    fn command(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        self.try_command(method, path, body)
            .unwrap_or_else(|(error, message)| {
                panic!("WebDriver {method} {path}: {error}: {message}")
            })
    }

    /// Opens `url` and waits for it to load.
    pub(crate) fn goto(&self, url: &str) {
        self.command("POST", "/url", Some(json!({"url": url})));
    }

    /// The current URL.
    pub(crate) fn url(&self) -> String {
        self.command("GET", "/url", None)
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Waits until the current URL satisfies `done` (a click that submits
    /// a form may return before the next page is there), for at most
    /// `limit`; whether it did.
    pub(crate) fn await_url(&self, limit: Duration, done: impl Fn(&str) -> bool) -> bool {
        let deadline = Instant::now() + limit;
        while !done(&self.url()) {
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        true
    }

    /// The first element matching `css`, if any.
    pub(crate) fn find(&self, css: &str) -> Option<Element> {
        match self.try_command(
            "POST",
            "/element",
            Some(json!({"using": "css selector", "value": css})),
        ) {
            Ok(value) => Some(element_of(&value)),
            Err((error, _)) if error == "no such element" => None,
            Err((error, message)) => panic!("finding {css:?}: {error}: {message}"),
        }
    }

    /// The first element matching `css`; fails the scenario when there is none.
    pub(crate) fn get(&self, css: &str) -> Element {
        self.find(css).unwrap_or_else(|| {
            panic!(
                "no element {css:?} on {}:\n{}",
                self.url(),
                self.visible_text()
            )
        })
    }

    /// An element's rendered text.
    pub(crate) fn text(&self, element: &Element) -> String {
        self.command("GET", &format!("/element/{}/text", element.0), None)
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// An element's attribute.
    pub(crate) fn attribute(&self, element: &Element, name: &str) -> Option<String> {
        self.command(
            "GET",
            &format!("/element/{}/attribute/{name}", element.0),
            None,
        )
        .as_str()
        .map(str::to_owned)
    }

    /// Clicks an element (a button submits its form; the next command waits
    /// for the page it loads).
    pub(crate) fn click(&self, element: &Element) {
        self.command("POST", &format!("/element/{}/click", element.0), None);
    }

    /// Types `text` into an input.
    pub(crate) fn type_into(&self, element: &Element, text: &str) {
        self.command(
            "POST",
            &format!("/element/{}/value", element.0),
            Some(json!({"text": text})),
        );
    }

    /// Runs `script` in the page (a function body; `return` gives its value).
    pub(crate) fn execute(&self, script: &str) -> Value {
        self.command(
            "POST",
            "/execute/sync",
            Some(json!({"script": script, "args": []})),
        )
    }

    /// The session's cookies, HttpOnly ones included, as WebDriver
    /// describes them (`name`, `value`, `httpOnly`, `sameSite`, …).
    pub(crate) fn cookies(&self) -> Vec<Value> {
        self.command("GET", "/cookie", None)
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// The page's whole visible text.
    pub(crate) fn visible_text(&self) -> String {
        self.find("body")
            .map(|body| self.text(&body))
            .unwrap_or_default()
    }

    /// Resizes the window (screenshots show the viewport only).
    pub(crate) fn set_window_size(&self, width: u32, height: u32) {
        self.command(
            "POST",
            "/window/rect",
            Some(json!({"width": width, "height": height})),
        );
    }

    /// Writes a PNG of the viewport to `path`.
    pub(crate) fn screenshot(&self, path: &Path) {
        let png = self.command("GET", "/screenshot", None);
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().unwrap_or_default())
            .expect("the screenshot is base64");
        assert!(bytes.starts_with(b"\x89PNG"), "a PNG screenshot");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }

    /// Reloads `url` until `done` holds of the page, for at most `limit`
    /// (a liveness bound); whether it did.
    pub(crate) fn wait_for(
        &self,
        url: &str,
        limit: Duration,
        done: impl Fn(&Browser) -> bool,
    ) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            self.goto(url);
            if done(self) {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = exchange(
                self.addr,
                "DELETE",
                &format!("/session/{}", self.session),
                "",
            );
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// One request on a fresh connection: the status and the JSON body, read
/// by its `Content-Length`.
fn exchange(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: &str,
) -> std::io::Result<(u16, Value)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(COMMAND_LIMIT))?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("no status line: {line:?}")))?;
    let mut length = 0;
    loop {
        line.clear();
        reader.read_line(&mut line)?;
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().map_err(std::io::Error::other)?;
        }
    }
    let mut answer = vec![0; length];
    reader.read_exact(&mut answer)?;
    let json = serde_json::from_slice(&answer).map_err(|error| {
        std::io::Error::other(format!(
            "status {status}, no JSON ({error}): {}",
            String::from_utf8_lossy(&answer)
        ))
    })?;
    Ok((status, json))
}

fn element_of(value: &Value) -> Element {
    // The W3C element reference key.
    let id = value["element-6066-11e4-a52e-4f735466cecf"]
        .as_str()
        .unwrap_or_else(|| panic!("not an element reference: {value}"));
    Element(id.to_owned())
}

/// A port free right now on 127.0.0.1.
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
