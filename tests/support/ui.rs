//! `regboot ui` started by a test: the URL it prints, plain HTTP/1.1 requests to it, and the
//! process killed by its PID when the test ends (also when it panics); and headless chromium
//! driven over the DevTools protocol to use the page as a person would.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct Ui {
    child: Child,
    /// `http://127.0.0.1:PORT/TOKEN/`, as printed.
    pub url: String,
}

impl Ui {
    pub fn start(inventory: &Path) -> Ui {
        let mut child = Command::new(env!("CARGO_BIN_EXE_regboot"))
            .args(["ui", "-i"])
            .arg(inventory)
            .stdout(Stdio::piped())
            .spawn()
            .expect("start regboot ui");
        let mut url = String::new();
        let read = BufReader::new(child.stdout.take().unwrap()).read_line(&mut url);
        let mut ui = Ui {
            child,
            url: url.trim().to_string(),
        };
        if read.is_err() || !ui.url.starts_with("http://") {
            let status = ui.child.wait();
            panic!("regboot ui printed no URL ({read:?}, {status:?})");
        }
        ui
    }

    /// The port in the URL.
    pub fn port(&self) -> u16 {
        let rest = self.url.strip_prefix("http://127.0.0.1:").expect(&self.url);
        rest.split('/').next().unwrap().parse().expect(&self.url)
    }

    /// The token in the URL.
    pub fn token(&self) -> &str {
        self.url.trim_end_matches('/').rsplit('/').next().unwrap()
    }

    /// `GET path` with our Host header: the status, the head (lowercase) and the body.
    pub fn get(&self, path: &str) -> (u16, String, String) {
        let host = format!("127.0.0.1:{}", self.port());
        get(&host, &host, path)
    }

    /// `POST path` with our Host header and `headers`.
    pub fn post(&self, path: &str, headers: &[(&str, &str)]) -> (u16, String, String) {
        let host = format!("127.0.0.1:{}", self.port());
        request(&host, &host, "POST", path, headers)
    }

    /// The origin a browser sends from the page.
    pub fn origin(&self) -> String {
        format!("http://127.0.0.1:{}", self.port())
    }
}

impl Drop for Ui {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `GET path` on `addr` with `Host: host`, connection closed after the answer.
pub fn get(addr: &str, host: &str, path: &str) -> (u16, String, String) {
    request(addr, host, "GET", path, &[])
}

/// `method path` on `addr` with `Host: host` and `headers`: the status, the head (lowercase)
/// and the body.
pub fn request(
    addr: &str,
    host: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, String, String) {
    let mut s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(150))).unwrap();
    let extra: String = headers
        .iter()
        .map(|(k, v)| format!("{k}: {v}\r\n"))
        .collect();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\n{extra}Content-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").expect(&answer);
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect(head);
    (status, head.to_lowercase(), body.to_string())
}

/// Headless chromium driven over the DevTools protocol on a pipe (`--remote-debugging-pipe`:
/// commands on fd 3, answers on fd 4, each a JSON text ended by NUL), so a test can type,
/// click, read the clipboard and take screenshots. Chromium gets a fresh profile in `dir`,
/// resolves no names and sends anything not on loopback to a closed local port, so it dials
/// nothing but the page; it runs in its own process group, killed when the browser is dropped.
pub struct Browser {
    child: Child,
    commands: std::io::PipeWriter,
    answers: std::sync::mpsc::Receiver<serde_json::Value>,
    next: u64,
    /// The page's DevTools session.
    session: String,
}

/// How long one DevTools command or one wait may take.
const BROWSER_TIMEOUT: Duration = Duration::from_secs(120);

impl Browser {
    pub fn start(dir: &Path) -> Browser {
        use std::os::fd::AsRawFd;
        use std::os::unix::process::CommandExt;
        let (cmd_r, cmd_w) = std::io::pipe().unwrap();
        let (ans_r, ans_w) = std::io::pipe().unwrap();
        let (cr, aw) = (cmd_r.as_raw_fd(), ans_w.as_raw_fd());
        let mut command = Command::new("chromium");
        command
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-default-apps",
                "--disable-extensions",
                "--proxy-server=http://127.0.0.1:9",
                "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
                "--remote-debugging-pipe",
                "about:blank",
            ])
            .arg(format!(
                "--user-data-dir={}",
                dir.join("chromium-profile").display()
            ))
            .stdout(std::fs::File::create(dir.join("chromium.out")).unwrap())
            .stderr(std::fs::File::create(dir.join("chromium.log")).unwrap())
            .process_group(0);
        // SAFETY: only async-signal-safe calls between fork and exec: the pipe ends become
        // fds 3 and 4 (first moved above 10 so neither dup2 overwrites the other).
        unsafe {
            command.pre_exec(move || {
                let (r, w) = (
                    libc::fcntl(cr, libc::F_DUPFD, 10),
                    libc::fcntl(aw, libc::F_DUPFD, 10),
                );
                if r < 0 || w < 0 || libc::dup2(r, 3) < 0 || libc::dup2(w, 4) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command
            .spawn()
            .expect("start chromium (scripts/install-deps.sh installs it)");
        drop((cmd_r, ans_w));
        let (tx, answers) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(ans_r);
            let mut message = Vec::new();
            while reader.read_until(0, &mut message).is_ok_and(|n| n > 0) {
                message.pop_if(|b| *b == 0);
                if let Ok(v) = serde_json::from_slice(&message)
                    && tx.send(v).is_err()
                {
                    return;
                }
                message.clear();
            }
        });
        let mut browser = Browser {
            child,
            commands: cmd_w,
            answers,
            next: 0,
            session: String::new(),
        };
        let target = browser.call(
            None,
            "Target.createTarget",
            serde_json::json!({"url": "about:blank"}),
        );
        let attached = browser.call(
            None,
            "Target.attachToTarget",
            serde_json::json!({"targetId": target["targetId"], "flatten": true}),
        );
        browser.session = attached["sessionId"].as_str().unwrap().to_string();
        browser.send("Page.enable", serde_json::json!({}));
        browser.send(
            "Emulation.setDeviceMetricsOverride",
            serde_json::json!({"width": 1400, "height": 1000, "deviceScaleFactor": 1, "mobile": false}),
        );
        // A headless page never has focus; the clipboard wants it.
        browser.send(
            "Emulation.setFocusEmulationEnabled",
            serde_json::json!({"enabled": true}),
        );
        browser
    }

    /// One DevTools command (to the page's session, or the browser's with `None`): its result.
    fn call(
        &mut self,
        session: Option<&str>,
        method: &str,
        params: serde_json::Value,
    ) -> serde_json::Value {
        self.try_call(session, method, params)
            .unwrap_or_else(|answer| panic!("{method}: {answer}"))
    }

    /// Like [`call`](Self::call), with chromium's error answer as the error.
    fn try_call(
        &mut self,
        session: Option<&str>,
        method: &str,
        params: serde_json::Value,
    ) -> Result<serde_json::Value, serde_json::Value> {
        self.next += 1;
        let mut message = serde_json::json!({"id": self.next, "method": method, "params": params});
        if let Some(s) = session {
            message["sessionId"] = s.into();
        }
        let mut bytes = serde_json::to_vec(&message).unwrap();
        bytes.push(0);
        self.commands.write_all(&bytes).expect("write to chromium");
        let deadline = std::time::Instant::now() + BROWSER_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let answer = self
                .answers
                .recv_timeout(left)
                .unwrap_or_else(|e| panic!("{method}: no answer from chromium ({e})"));
            if answer["id"] == self.next {
                if !answer["error"].is_null() {
                    return Err(answer);
                }
                return Ok(answer["result"].clone());
            }
        }
    }

    /// A command to the page.
    pub fn send(&mut self, method: &str, params: serde_json::Value) -> serde_json::Value {
        let session = self.session.clone();
        self.call(Some(&session), method, params)
    }

    /// Load `url` (the page's scripts then run by themselves).
    pub fn open(&mut self, url: &str) {
        let nav = self.send("Page.navigate", serde_json::json!({"url": url}));
        assert!(nav["errorText"].is_null(), "{url}: {nav}");
    }

    /// Let the page's origin use the clipboard.
    pub fn allow_clipboard(&mut self, origin: &str) {
        self.call(
            None,
            "Browser.grantPermissions",
            serde_json::json!({"origin": origin, "permissions": ["clipboardReadWrite", "clipboardSanitizedWrite"]}),
        );
    }

    /// The value of a JavaScript expression in the page (a promise is awaited), run as if the
    /// user had acted (a click it makes may use the clipboard).
    pub fn eval(&mut self, expression: &str) -> serde_json::Value {
        self.try_eval(expression)
            .unwrap_or_else(|answer| panic!("Runtime.evaluate: {answer}"))
    }

    /// Run `expression` that leaves the page (a link clicked): chromium may answer that the
    /// page navigated before the evaluation returned, which is what was asked for.
    pub fn leave_by(&mut self, expression: &str) {
        if let Err(answer) = self.try_eval(expression) {
            let message = answer["error"]["message"].as_str().unwrap_or_default();
            assert!(message.contains("navigated"), "{expression}: {answer}");
        }
    }

    /// Like [`eval`](Self::eval), with chromium's error answer (e.g. the page navigated while
    /// the expression ran) as the error.
    fn try_eval(&mut self, expression: &str) -> Result<serde_json::Value, serde_json::Value> {
        let session = self.session.clone();
        let r = self.try_call(
            Some(&session),
            "Runtime.evaluate",
            serde_json::json!({"expression": expression, "awaitPromise": true,
                "returnByValue": true, "userGesture": true}),
        )?;
        assert!(r["exceptionDetails"].is_null(), "{expression}: {r:#}");
        Ok(r["result"]["value"].clone())
    }

    /// Wait until `expression` is truthy (at most two minutes); its value.
    pub fn wait(&mut self, expression: &str) -> serde_json::Value {
        self.wait_for(expression, BROWSER_TIMEOUT)
    }

    /// Like [`wait`](Self::wait), at most `timeout`.
    pub fn wait_for(&mut self, expression: &str, timeout: Duration) -> serde_json::Value {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            // A navigation (the page loading, a link followed) may cut an evaluation short:
            // that is a "not yet", like a null.
            let v = self
                .try_eval(&format!(
                    "(() => {{ try {{ return {expression}; }} catch (e) {{ return null; }} }})()"
                ))
                .unwrap_or(serde_json::Value::Null);
            if !(v.is_null() || v == false || v == "" || v == 0) {
                return v;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "waited in vain for {expression}; the page says: {}",
                self.eval("document.body.innerText")
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// A PNG of the whole page.
    pub fn screenshot(&mut self, path: &Path) {
        use base64::Engine;
        let shot = self.send(
            "Page.captureScreenshot",
            serde_json::json!({"format": "png", "captureBeyondViewport": true}),
        );
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().unwrap())
            .unwrap();
        std::fs::write(path, png).unwrap();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // SAFETY: kill(2) on the process group this test started: chromium's helpers too.
        unsafe { libc::kill(-(self.child.id() as i32), libc::SIGKILL) };
        let _ = self.child.wait();
    }
}
