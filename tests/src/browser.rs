//! A real browser for the console tests: Debian's `chromium`, driven headless through
//! `chromedriver` (W3C WebDriver over HTTP on a free loopback port) with a temporary profile.
//! Both are killed when the [`Browser`] is dropped. No network: pages come from loopback.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{json, Value};

/// The longest wait for something to appear on the page (generous: the machine may be busy;
/// a wait that succeeds returns as soon as it does).
const WAIT: Duration = Duration::from_secs(30);

/// The W3C name of an element reference in WebDriver JSON.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Where the console tests write their screenshots (`target/console-screenshots/`).
pub fn screenshot_dir() -> PathBuf {
    let dir = crate::bins::target_dir()
        .parent()
        .expect("target/<profile> inside target")
        .join("console-screenshots");
    std::fs::create_dir_all(&dir).expect("screenshot dir");
    dir
}

/// A free port on 127.0.0.1 (bound, then released for the child to take).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// A headless Chromium session.
#[derive(Debug)]
pub struct Browser {
    driver: Child,
    base: String,
    session: String,
    agent: ureq::Agent,
    profile: tempfile::TempDir,
    /// Where downloads land.
    pub downloads: PathBuf,
}

/// An element found on the page.
#[derive(Debug, Clone)]
pub struct Element(String);

impl Browser {
    /// Starts chromedriver and a headless Chromium whose language is `lang` (`zh-CN`, `en-US`).
    pub fn start(lang: &str) -> Self {
        let port = free_port();
        let driver = Command::new(chromedriver())
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver (apt-get install chromium-driver)");
        let base = format!("http://127.0.0.1:{port}");
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        let deadline = Instant::now() + WAIT;
        loop {
            let ready = agent
                .get(format!("{base}/status"))
                .call()
                .ok()
                .and_then(|mut r| r.body_mut().read_json::<Value>().ok())
                .is_some_and(|v| v["value"]["ready"] == true);
            if ready {
                break;
            }
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        let profile = tempfile::tempdir().expect("profile dir");
        let downloads = profile.path().join("downloads");
        std::fs::create_dir_all(&downloads).expect("downloads dir");
        let mut browser = Self {
            driver,
            base,
            session: String::new(),
            agent,
            downloads,
            profile,
        };
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium(),
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    format!("--user-data-dir={}", browser.profile.path().join("profile").display()),
                    format!("--lang={lang}"),
                    "--window-size=1280,900", "--no-first-run", "--no-default-browser-check",
                    "--disable-background-networking", "--disable-sync", "--disable-extensions",
                    "--disable-component-update", "--disable-default-apps",
                    "--disable-features=Translate,MediaRouter,OptimizationHints",
                    "--password-store=basic",
                ],
                "prefs": {
                    "intl.accept_languages": lang,
                    "download.default_directory": browser.downloads.display().to_string(),
                    "download.prompt_for_download": false,
                    "credentials_enable_service": false,
                    "profile.password_manager_enabled": false,
                },
            },
        }}});
        let answer = browser.post("/session", &caps);
        browser.session = answer["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {answer}"))
            .to_owned();
        browser
    }

    fn url(&self, path: &str) -> String {
        if path.starts_with("/session") && !self.session.is_empty() {
            format!(
                "{}/session/{}{}",
                self.base,
                self.session,
                &path["/session".len()..]
            )
        } else {
            format!("{}{path}", self.base)
        }
    }

    fn answer(path: &str, mut response: ureq::http::Response<ureq::Body>) -> Value {
        let status = response.status().as_u16();
        let body: Value = response
            .body_mut()
            .read_json()
            .unwrap_or_else(|e| panic!("WebDriver {path}: unreadable answer: {e}"));
        if status >= 400 {
            panic!("WebDriver {path}: {status} {}", body["value"]);
        }
        body["value"].clone()
    }

    fn post(&self, path: &str, body: &Value) -> Value {
        let r = self
            .agent
            .post(self.url(path))
            .send_json(body)
            .unwrap_or_else(|e| panic!("WebDriver {path}: {e}"));
        Self::answer(path, r)
    }

    fn try_post(&self, path: &str, body: &Value) -> Result<Value, String> {
        let mut r = self
            .agent
            .post(self.url(path))
            .send_json(body)
            .map_err(|e| e.to_string())?;
        let status = r.status().as_u16();
        let v: Value = r.body_mut().read_json().map_err(|e| e.to_string())?;
        if status >= 400 {
            Err(v["value"]["message"].as_str().unwrap_or("error").to_owned())
        } else {
            Ok(v["value"].clone())
        }
    }

    fn try_get(&self, path: &str) -> Option<Value> {
        let mut r = self.agent.get(self.url(path)).call().ok()?;
        let ok = r.status().as_u16() < 400;
        let v: Value = r.body_mut().read_json().ok()?;
        ok.then(|| v["value"].clone())
    }

    fn get(&self, path: &str) -> Value {
        let r = self
            .agent
            .get(self.url(path))
            .call()
            .unwrap_or_else(|e| panic!("WebDriver {path}: {e}"));
        Self::answer(path, r)
    }

    /// Opens `url`.
    pub fn goto(&self, url: &str) {
        self.post("/session/url", &json!({ "url": url }));
    }

    /// The address bar.
    pub fn current_url(&self) -> String {
        self.get("/session/url")
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// The first element matching `css` now, if any.
    pub fn find(&self, css: &str) -> Option<Element> {
        self.try_post(
            "/session/element",
            &json!({"using": "css selector", "value": css}),
        )
        .ok()
        .and_then(|v| v[ELEMENT].as_str().map(|id| Element(id.to_owned())))
    }

    /// Every element matching `css` now.
    pub fn find_all(&self, css: &str) -> Vec<Element> {
        self.post(
            "/session/elements",
            &json!({"using": "css selector", "value": css}),
        )
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v[ELEMENT].as_str().map(|id| Element(id.to_owned())))
        .collect()
    }

    /// Waits (at most 30 s: the machine may be busy) for an element matching `css`.
    pub fn wait(&self, css: &str) -> Element {
        self.wait_for(css, WAIT)
    }

    /// Waits at most `limit` for an element matching `css`.
    pub fn wait_for(&self, css: &str, limit: Duration) -> Element {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(e) = self.find(css) {
                return e;
            }
            assert!(
                Instant::now() < deadline,
                "no element {css:?} after {limit:?}; the page says: {}",
                self.text("body")
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits (at most 30 s) until the text of `css` contains `needle`.
    pub fn wait_text(&self, css: &str, needle: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            // The element may be replaced between finding and reading it (a re-render).
            let text = self
                .find(css)
                .and_then(|e| self.try_get(&format!("/session/element/{}/text", e.0)))
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            if text.contains(needle) {
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "{css:?} never said {needle:?}; it says {text:?}; the page says: {}",
                self.text("body")
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The visible text of the first element matching `css` (empty if none).
    pub fn text(&self, css: &str) -> String {
        self.find(css)
            .and_then(|e| self.try_get(&format!("/session/element/{}/text", e.0)))
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    }

    /// The visible text of `e`.
    pub fn text_of(&self, e: &Element) -> String {
        self.get(&format!("/session/element/{}/text", e.0))
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Clicks `e`.
    pub fn click(&self, e: &Element) {
        self.post(&format!("/session/element/{}/click", e.0), &json!({}));
    }

    /// Waits for an element matching `css` and clicks it; when the page re-renders it
    /// between the two (a table redrawn by a live event), finds it again.
    pub fn click_css(&self, css: &str) {
        let deadline = Instant::now() + WAIT;
        loop {
            let e = self.wait(css);
            match self.try_post(&format!("/session/element/{}/click", e.0), &json!({})) {
                Ok(_) => return,
                Err(why) if why.contains("stale element") && Instant::now() < deadline => {}
                Err(why) => panic!("clicking {css:?}: {why}"),
            }
        }
    }

    /// Types `text` into `e` (WebDriver key codes such as `\u{E007}` Enter allowed).
    pub fn type_into(&self, e: &Element, text: &str) {
        self.post(
            &format!("/session/element/{}/value", e.0),
            &json!({ "text": text }),
        );
    }

    /// Types `text` into whatever has the focus, as key presses.
    pub fn keys(&self, text: &str) {
        let mut actions = Vec::new();
        for c in text.chars() {
            actions.push(json!({"type": "keyDown", "value": c.to_string()}));
            actions.push(json!({"type": "keyUp", "value": c.to_string()}));
        }
        self.post(
            "/session/actions",
            &json!({"actions": [{"type": "key", "id": "keyboard", "actions": actions}]}),
        );
    }

    /// Presses `key` while holding Alt (e.g. an `accesskey`).
    pub fn alt(&self, key: char) {
        const ALT: &str = "\u{E00A}";
        self.post(
            "/session/actions",
            &json!({"actions": [{"type": "key", "id": "keyboard", "actions": [
                {"type": "keyDown", "value": ALT},
                {"type": "keyDown", "value": key.to_string()},
                {"type": "keyUp", "value": key.to_string()},
                {"type": "keyUp", "value": ALT},
            ]}]}),
        );
    }

    /// Runs `script` (a function body; `arguments` are `args`) and returns its value.
    pub fn run(&self, script: &str, args: &[Value]) -> Value {
        self.post(
            "/session/execute/sync",
            &json!({ "script": script, "args": args }),
        )
    }

    /// Runs an asynchronous `script`: it calls `arguments[arguments.length - 1]` with its result.
    pub fn run_async(&self, script: &str, args: &[Value]) -> Value {
        self.post(
            "/session/execute/async",
            &json!({ "script": script, "args": args }),
        )
    }

    /// The whole DOM as HTML, with the current value of every input and text area.
    pub fn dom_and_values(&self) -> String {
        self.run(
            "return document.documentElement.outerHTML + '\\n' + Array.from(document.querySelectorAll('input,textarea,select')).map(e => e.value).join('\\n');",
            &[],
        )
        .as_str()
        .unwrap_or_default()
        .to_owned()
    }

    /// The console session the page holds (its bearer, from sessionStorage).
    pub fn session(&self) -> String {
        self.run(
            "return JSON.parse(sessionStorage.getItem('seald.session')).session",
            &[],
        )
        .as_str()
        .expect("the page holds a console session")
        .to_owned()
    }

    /// Everything in the page's sessionStorage and localStorage, as text.
    pub fn storage(&self) -> String {
        self.run(
            "const all = {}; for (const s of [sessionStorage, localStorage]) for (let i = 0; i < s.length; i++) all[s.key(i)] = s.getItem(s.key(i)); return JSON.stringify(all);",
            &[],
        )
        .as_str()
        .unwrap_or_default()
        .to_owned()
    }

    /// Writes a PNG of the window to `target/console-screenshots/NAME.png`; returns its path.
    pub fn screenshot(&self, name: &str) -> PathBuf {
        let b64 = self.get("/session/screenshot");
        let png = base64::engine::general_purpose::STANDARD
            .decode(b64.as_str().expect("screenshot"))
            .expect("PNG base64");
        let path = screenshot_dir().join(format!("{name}.png"));
        std::fs::write(&path, png).expect("write screenshot");
        path
    }

    /// Switches into the frame `e` (or back to the top with `None`).
    pub fn frame(&self, e: Option<&Element>) {
        let id = match e {
            Some(e) => json!({ ELEMENT: e.0 }),
            None => Value::Null,
        };
        self.post("/session/frame", &json!({ "id": id }));
    }

    /// Waits (at most 30 s) for a download whose name ends with `suffix`; its bytes.
    pub fn downloaded(&self, suffix: &str) -> Vec<u8> {
        let deadline = Instant::now() + WAIT;
        loop {
            let files: Vec<PathBuf> = std::fs::read_dir(&self.downloads)
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.path())
                .collect();
            // Chromium may put the final name down empty before the bytes arrive (through a
            // `.crdownload` file): only a finished, non-empty file counts.
            let writing = files
                .iter()
                .any(|p| p.to_string_lossy().ends_with(".crdownload"));
            let found = files.iter().find(|p| p.to_string_lossy().ends_with(suffix));
            if let (false, Some(path)) = (writing, found) {
                let bytes = std::fs::read(path).expect("read download");
                if !bytes.is_empty() {
                    return bytes;
                }
            }
            assert!(Instant::now() < deadline, "no download ending {suffix}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = self
                .agent
                .delete(format!("{}/session/{}", self.base, self.session))
                .call();
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn first_existing(candidates: &[&str]) -> Option<PathBuf> {
    candidates
        .iter()
        .map(Path::new)
        .find(|p| p.exists())
        .map(Path::to_path_buf)
}

fn chromedriver() -> PathBuf {
    first_existing(&["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"])
        .expect("chromedriver is missing: run scripts/setup.sh (Debian package chromium-driver)")
}

fn chromium() -> String {
    first_existing(&["/usr/lib/chromium/chromium", "/usr/bin/chromium"])
        .expect("chromium is missing: run scripts/setup.sh (Debian package chromium)")
        .display()
        .to_string()
}

/// A tiny web server on another loopback port serving `html` for every request: a page of
/// another origin, for the cross-origin tests. Runs until the test process ends.
pub fn serve_other_origin(html: String) -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut stream = stream;
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                html.len()
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(html.as_bytes());
        }
    });
    url
}
