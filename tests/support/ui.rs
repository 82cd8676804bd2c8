//! `regboot ui` started by a test: the URL it prints, plain HTTP/1.1 requests to it, and the
//! process killed by its PID when the test ends (also when it panics).

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
}

impl Drop for Ui {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `GET path` on `addr` with `Host: host`, connection closed after the answer.
pub fn get(addr: &str, host: &str, path: &str) -> (u16, String, String) {
    let mut s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(150))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
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
