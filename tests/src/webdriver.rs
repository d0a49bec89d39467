//! A minimal W3C WebDriver client for driving Debian's headless Chromium
//! through chromedriver: enough to click through the dashboard like a user.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

pub struct Browser {
    base: String,
    session: String,
    driver: Child,
    _profile: tempfile::TempDir,
}

fn post(url: &str, body: Value) -> Value {
    match ureq::post(url).send_json(body) {
        Ok(r) => r.into_json().unwrap(),
        Err(ureq::Error::Status(code, r)) => panic!(
            "webdriver {url} -> {code}: {}",
            r.into_string().unwrap_or_default()
        ),
        Err(e) => panic!("webdriver {url}: {e}"),
    }
}

impl Browser {
    pub fn start() -> Browser {
        let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .expect("Debian chromium is not installed: run `cargo xtask setup`");
        let port = crate::free_port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect(
                "chromedriver (Debian chromium-driver) must be installed: run `cargo xtask setup`",
            );
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        while ureq::get(&format!("{base}/status")).call().is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        let profile = tempfile::tempdir().unwrap();
        let v = post(
            &format!("{base}/session"),
            json!({"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
                "binary": chromium,
                "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                         "--disable-background-networking", "--disable-component-update", "--disable-sync",
                         "--disable-dev-shm-usage", "--window-size=1280,1000",
                         format!("--user-data-dir={}", profile.path().display())]
            }}}}),
        );
        let session = v["value"]["sessionId"]
            .as_str()
            .expect("session id")
            .to_string();
        Browser {
            base,
            session,
            driver,
            _profile: profile,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}/session/{}{path}", self.base, self.session)
    }

    pub fn goto(&self, url: &str) {
        post(&self.url("/url"), json!({"url": url}));
    }

    pub fn find(&self, css: &str) -> String {
        let v = post(
            &self.url("/element"),
            json!({"using": "css selector", "value": css}),
        );
        v["value"][ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("no element {css}"))
            .to_string()
    }

    pub fn try_find(&self, css: &str) -> Option<String> {
        match ureq::post(&self.url("/element"))
            .send_json(json!({"using": "css selector", "value": css}))
        {
            Ok(r) => r.into_json::<Value>().ok()?["value"][ELEMENT]
                .as_str()
                .map(str::to_string),
            Err(_) => None,
        }
    }

    pub fn click(&self, css: &str) {
        let e = self.wait_for(css);
        post(&self.url(&format!("/element/{e}/click")), json!({}));
    }

    pub fn type_into(&self, css: &str, text: &str) {
        let e = self.wait_for(css);
        post(
            &self.url(&format!("/element/{e}/value")),
            json!({"text": text}),
        );
    }

    /// Waits for an element to appear: a click that submits a form returns
    /// before the next page has loaded.
    pub fn wait_for(&self, css: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(e) = self.try_find(css) {
                return e;
            }
            assert!(
                Instant::now() < deadline,
                "no element {css}; page:\n{}",
                self.source()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Opens a mailed sign-in link and presses its confirm button, then waits
    /// for a signed-in page: the button submits a form, and a `goto` issued
    /// before its answer arrives would be overtaken by the redirect to `/`.
    pub fn confirm_sign_in(&self, link: &str) {
        self.goto(link);
        self.click("[data-testid=confirm-signin]");
        self.wait_for("form[action='/logout']");
    }

    pub fn text(&self, css: &str) -> String {
        let e = self.wait_for(css);
        let v: Value = ureq::get(&self.url(&format!("/element/{e}/text")))
            .call()
            .unwrap()
            .into_json()
            .unwrap();
        v["value"].as_str().unwrap_or_default().to_string()
    }

    pub fn resize(&self, width: u32, height: u32) {
        post(
            &self.url("/window/rect"),
            json!({"width": width, "height": height}),
        );
    }

    pub fn source(&self) -> String {
        let v: Value = ureq::get(&self.url("/source"))
            .call()
            .unwrap()
            .into_json()
            .unwrap();
        v["value"].as_str().unwrap_or_default().to_string()
    }

    pub fn current_url(&self) -> String {
        let v: Value = ureq::get(&self.url("/url"))
            .call()
            .unwrap()
            .into_json()
            .unwrap();
        v["value"].as_str().unwrap_or_default().to_string()
    }

    pub fn eval(&self, script: &str) -> Value {
        post(
            &self.url("/execute/sync"),
            json!({"script": script, "args": []}),
        )["value"]
            .clone()
    }

    /// Saves a PNG under tests/artifacts/<name>.png and returns its path.
    pub fn screenshot(&self, name: &str) -> std::path::PathBuf {
        use base64::Engine;
        let v: Value = ureq::get(&self.url("/screenshot"))
            .call()
            .unwrap()
            .into_json()
            .unwrap();
        let png = base64::engine::general_purpose::STANDARD
            .decode(v["value"].as_str().unwrap())
            .unwrap();
        let dir = crate::root().join("tests/artifacts");
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(format!("{name}.png"));
        std::fs::write(&p, png).unwrap();
        p
    }

    /// Clicks something that loads a new page (a link, a form's button) and
    /// waits for that page: the old document's marker is gone and the new
    /// one has loaded.
    pub fn click_and_load(&self, css: &str) {
        self.eval("window.__tally_old_page = true; return true;");
        self.click(css);
        self.wait_until(
            "return window.__tally_old_page === undefined && document.readyState === 'complete'",
            Duration::from_secs(30),
        );
    }

    /// Evaluates `script` until it returns `true`.
    pub fn wait_until(&self, script: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.eval(script) != json!(true) {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for `{script}`; page:\n{}",
                self.source()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// No sideways scrolling: the document is no wider than the window.
    pub fn fits_the_screen(&self) -> bool {
        self.eval("return document.documentElement.scrollWidth <= window.innerWidth") == json!(true)
    }

    /// axe-core's serious and critical violations on the current page, as
    /// "rule: target" lines. axe-core 4.14.1 (MPL-2.0) is vendored under
    /// tests/vendor/axe-core and injected through WebDriver.
    pub fn axe_violations(&self) -> Vec<String> {
        const AXE: &str = include_str!("../vendor/axe-core/axe.min.js");
        self.eval(&format!("{AXE}\n;return true;"));
        let v = self.eval(
            "return axe.run(document, {resultTypes: ['violations']}).then(r => r.violations
                .filter(v => v.impact === 'serious' || v.impact === 'critical')
                .map(v => v.id + ': ' + v.nodes.map(n => n.target.join(' ')).join(', ')))",
        );
        v.as_array()
            .unwrap_or_else(|| panic!("axe did not run: {v}"))
            .iter()
            .map(|s| s.as_str().unwrap_or_default().to_string())
            .collect()
    }

    /// Reloads `url` until the text of `css` satisfies `ok`.
    pub fn wait_for_text(
        &self,
        url: &str,
        css: &str,
        timeout: Duration,
        ok: impl Fn(&str) -> bool,
    ) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            self.goto(url);
            if self.try_find(css).is_some() {
                let t = self.text(css);
                if ok(&t) {
                    return t;
                }
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {css} on {url}; page:\n{}",
                self.source()
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = ureq::delete(&format!("{}/session/{}", self.base, self.session)).call();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
