//! A real OpenSSH server on a loopback port, with its own host keys, authorized_keys and
//! config in a temp dir; stopped (by its PID) when dropped. Also client keys, test users with
//! and without NOPASSWD sudo, and a real ssh-agent.

#![allow(dead_code)] // each test binary uses a different part of this fixture

use std::fs;
use std::io::Read;
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use regboot::ssh::{HostKeyCheck, Target};

pub const SSHD: &str = "/usr/sbin/sshd";

pub fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A new key pair made by ssh-keygen: `kind` is ed25519, ecdsa or rsa.
pub fn keygen(dir: &Path, name: &str, kind: &str, passphrase: &str) -> PathBuf {
    let path = dir.join(name);
    run(Command::new("ssh-keygen")
        .args(["-q", "-t", kind, "-N", passphrase, "-C", name, "-f"])
        .arg(&path));
    path
}

pub fn public_key(private: &Path) -> String {
    fs::read_to_string(private.with_extension("pub"))
        .or_else(|_| fs::read_to_string(format!("{}.pub", private.display())))
        .unwrap()
}

pub struct Sshd {
    pub port: u16,
    pub dir: PathBuf,
    /// Host keys in OpenSSH public format, ed25519 first.
    pub host_keys: Vec<String>,
    child: Child,
    _tmp: tempfile::TempDir,
}

#[derive(Default, Clone)]
pub struct SshdOptions {
    /// Lines of authorized_keys (shared by every user on this server).
    pub authorized_keys: Vec<String>,
    /// Host key types to generate (default: ed25519 and ecdsa).
    pub host_key_types: Vec<&'static str>,
    /// Extra sshd_config lines.
    pub extra_config: Vec<String>,
}

impl Sshd {
    pub fn start(opts: &SshdOptions) -> Sshd {
        fs::create_dir_all("/run/sshd").unwrap(); // privilege separation dir
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        // Non-root users read authorized_keys from here.
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        let types = if opts.host_key_types.is_empty() {
            vec!["ed25519", "ecdsa"]
        } else {
            opts.host_key_types.clone()
        };
        let mut host_keys = Vec::new();
        let mut host_key_lines = String::new();
        for t in types {
            let key = keygen(&dir, &format!("ssh_host_{t}_key"), t, "");
            host_keys.push(public_key(&key));
            host_key_lines.push_str(&format!("HostKey {}\n", key.display()));
        }
        let ak = dir.join("authorized_keys");
        fs::write(&ak, opts.authorized_keys.join("\n") + "\n").unwrap();
        fs::set_permissions(&ak, fs::Permissions::from_mode(0o644)).unwrap();

        // A free port can be taken between our probe and sshd's bind: retry a few times.
        for _ in 0..10 {
            let port = super::free_port();
            let config = dir.join("sshd_config");
            fs::write(
                &config,
                format!(
                    "Port {port}\nListenAddress 127.0.0.1\n{host_key_lines}PidFile {pid}\n\
                     AuthorizedKeysFile {ak}\nStrictModes no\nUsePAM no\nPermitRootLogin yes\n\
                     PasswordAuthentication no\nKbdInteractiveAuthentication no\n\
                     AllowTcpForwarding yes\nLogLevel ERROR\n{extra}\n",
                    pid = dir.join("sshd.pid").display(),
                    ak = ak.display(),
                    extra = opts.extra_config.join("\n"),
                ),
            )
            .unwrap();
            let mut child = Command::new(SSHD)
                .args(["-D", "-e", "-f"])
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(fs::File::create(dir.join("sshd.log")).unwrap())
                .spawn()
                .expect("start sshd (is openssh-server installed? scripts/install-deps.sh)");
            if wait_for_banner(port, &mut child) {
                return Sshd {
                    port,
                    dir,
                    host_keys,
                    child,
                    _tmp: tmp,
                };
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!(
            "sshd did not start; log: {}",
            fs::read_to_string(dir.join("sshd.log")).unwrap_or_default()
        );
    }

    /// The PIDs of the sshd processes this sshd forked for its connections (not the commands
    /// they run), to cut connections from the host's side as a dying sshd or network would.
    pub fn session_pids(&self) -> Vec<u32> {
        let children = |pid: u32| -> Vec<u32> {
            let out = Command::new("pgrep")
                .args(["-P", &pid.to_string()])
                .output()
                .expect("run pgrep");
            String::from_utf8_lossy(&out.stdout)
                .split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect()
        };
        let mut all = children(self.child.id());
        let mut i = 0;
        // Bounded: a session's process tree is a handful deep.
        while i < all.len() && i < 64 {
            let more = children(all[i]);
            all.extend(more);
            i += 1;
        }
        all.retain(|pid| {
            fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.starts_with("sshd"))
        });
        all
    }

    /// A target for this server with the given user, key and known_hosts.
    pub fn target(&self, name: &str, user: &str, key: Option<&Path>, known_hosts: &Path) -> Target {
        Target {
            name: name.to_string(),
            address: "127.0.0.1".into(),
            port: self.port,
            user: user.into(),
            key: key.map(Path::to_path_buf),
            key_passphrase_env: None,
            sudo: user != "root",
            bastion: None,
            known_hosts: known_hosts.to_path_buf(),
            global_known_hosts: Vec::new(),
            host_key_alias: None,
            host_key_check: HostKeyCheck::AcceptNew,
            connect_timeout: Duration::from_secs(10),
        }
    }

    /// The `[127.0.0.1]:PORT` line OpenSSH would store for this server's ed25519 key.
    pub fn known_hosts_line(&self) -> String {
        let key: Vec<&str> = self.host_keys[0].split_whitespace().take(2).collect();
        format!("[127.0.0.1]:{} {}", self.port, key.join(" "))
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// True once the server sends its SSH banner; false if it exited or 10 s passed.
fn wait_for_banner(port: u16, child: &mut Child) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return false;
        }
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
            let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
            let mut buf = [0u8; 4];
            if s.read_exact(&mut buf).is_ok() && &buf == b"SSH-" {
                return true;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// A local user for sudo tests, created once (idempotent, safe across parallel test
/// processes). `sudoers` is the content of its /etc/sudoers.d file.
pub fn ensure_user(name: &str, sudoers: &str) {
    // Serialize with other test processes doing the same.
    let lock = fs::File::create("/tmp/regboot-test-users.lock").unwrap();
    use std::os::fd::AsRawFd;
    // SAFETY: flock on a file descriptor we own; released when `lock` is closed.
    unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) };
    let exists = Command::new("id")
        .arg("-u")
        .arg(name)
        .output()
        .unwrap()
        .status
        .success();
    if !exists {
        run(Command::new("useradd").args(["-m", "-s", "/bin/sh", name]));
    }
    // "*" (no password, not locked): sshd without PAM refuses locked ("!") accounts.
    run(Command::new("usermod").args(["-p", "*", name]));
    let file = format!("/etc/sudoers.d/{}", name.replace('.', "_"));
    fs::write(&file, sudoers).unwrap();
    fs::set_permissions(&file, fs::Permissions::from_mode(0o440)).unwrap();
    run(Command::new("visudo").args(["-c", "-f", &file]));
}

/// A real ssh-agent on a socket in `dir`, killed (by PID) when dropped.
pub struct Agent {
    pub socket: PathBuf,
    child: Child,
}

impl Agent {
    pub fn start(dir: &Path) -> Agent {
        let socket = dir.join("agent.sock");
        let child = Command::new("ssh-agent")
            .arg("-D")
            .arg("-a")
            .arg(&socket)
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while !socket.exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        Agent { socket, child }
    }

    pub fn add(&self, key: &Path) {
        run(Command::new("ssh-add")
            .arg(key)
            .env("SSH_AUTH_SOCK", &self.socket)
            .stderr(Stdio::null()));
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
