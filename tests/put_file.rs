//! `RemoteHost::put_file` against a real OpenSSH sshd on loopback: a file is replaced whole or
//! not at all, whether the stream is short, the client is killed mid-transfer or the disk fills.
//! And a script longer than the SSH command timeout (the bundle's install) run detached.

mod support;

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use regboot::host::detached::Detached;
use regboot::host::{Mode, PUT_FILE, RemoteHost};
use regboot::ssh::{RemoteCommand, Session};
use sha2::{Digest, Sha256};
use support::sshd::{Sshd, SshdOptions, keygen, public_key};

const OLD: &[u8] = b"{\"debug\": false}\n";

struct Fixture {
    dir: tempfile::TempDir,
    key: PathBuf,
    sshd: Sshd,
}

impl Fixture {
    fn start() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let key = keygen(dir.path(), "id", "ed25519", "");
        let sshd = Sshd::start(&SshdOptions {
            authorized_keys: vec![public_key(&key)],
            ..Default::default()
        });
        Fixture { dir, key, sshd }
    }

    async fn host(&self) -> RemoteHost {
        RemoteHost::new(self.session().await)
    }

    /// A host whose commands are cut off after `timeout` (the default is 120 s).
    async fn host_timing_out(&self, timeout: Duration) -> RemoteHost {
        let mut session = self.session().await;
        session.set_command_timeout(timeout);
        RemoteHost::new(session)
    }

    async fn session(&self) -> Session {
        let target = self.sshd.target(
            "h1",
            "root",
            Some(&self.key),
            &self.dir.path().join("known_hosts"),
        );
        Session::connect(&target).await.unwrap()
    }

    /// A directory on the "remote" side holding `daemon.json` with the old content.
    fn managed_dir(&self, name: &str) -> (PathBuf, PathBuf) {
        let d = self.dir.path().join(name);
        fs::create_dir_all(&d).unwrap();
        let file = d.join("daemon.json");
        fs::write(&file, OLD).unwrap();
        (d, file)
    }
}

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// Deterministic bytes that compress badly.
fn data(len: usize) -> Vec<u8> {
    (0..len as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect()
}

fn temp_files(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".regboot."))
        .collect()
}

fn assert_untouched(dir: &Path, file: &Path) {
    assert_eq!(
        fs::read(file).unwrap(),
        OLD,
        "the old file must stay byte-identical"
    );
    assert_eq!(temp_files(dir), Vec::<String>::new(), "no temp file left");
}

#[tokio::test]
async fn writes_whole_files_and_refuses_a_short_or_corrupt_stream() {
    let fx = Fixture::start();
    let host = fx.host().await;
    let (dir, file) = fx.managed_dir("etc");
    let path = file.to_str().unwrap();

    let new = data(300_000);
    host.put_file(path, &new, Mode::Set(0o640)).await.unwrap();
    assert_eq!(fs::read(&file).unwrap(), new);
    assert_eq!(
        fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o640
    );
    assert!(temp_files(&dir).is_empty());

    fs::write(&file, OLD).unwrap();
    let (size, sum) = (new.len().to_string(), sha256_hex(&new));
    let cases: [(&str, &[u8]); 2] = [
        ("a stream that ends early", &new[..new.len() / 3]),
        (
            "the right length with other bytes",
            &data(new.len() + 1)[1..],
        ),
    ];
    for (what, stdin) in cases {
        let out = host
            .script(PUT_FILE, &[path, "644", &size, &sum], Some(stdin))
            .await
            .unwrap();
        assert!(!out.success(), "{what} was installed");
        assert!(
            out.stderr_tail().contains("the transfer was cut short"),
            "{what}: {}",
            out.stderr_tail()
        );
        assert_untouched(&dir, &file);
    }
}

/// The OpenSSH client streams a large file and is killed with SIGKILL halfway: the host keeps
/// the old file and removes its temp file.
#[tokio::test]
async fn a_client_killed_mid_transfer_leaves_the_old_file() {
    let fx = Fixture::start();
    let (dir, file) = fx.managed_dir("killed");
    let new = data(16 << 20);
    let cmd = RemoteCommand::new("sh")
        .arg("-c")
        .arg(PUT_FILE)
        .arg("regboot")
        .args([
            file.to_str().unwrap(),
            "644",
            &new.len().to_string(),
            &sha256_hex(&new),
        ]);
    let mut ssh = Command::new("ssh")
        .args(["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no"])
        .args(["-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR"])
        .arg("-i")
        .arg(&fx.key)
        .args(["-p", &fx.sshd.port.to_string(), "root@127.0.0.1"])
        .arg(cmd.as_str())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = ssh.stdin.take().unwrap();
    let half = new[..new.len() / 2].to_vec();
    // In a thread: the write fails (broken pipe) once the client is killed.
    let writer = std::thread::spawn(move || stdin.write_all(&half));
    // Kill only once the host is writing its temp file, i.e. truly mid-transfer.
    wait_until("the temp file appears", || !temp_files(&dir).is_empty());
    ssh.kill().unwrap();
    ssh.wait().unwrap();
    let _ = writer.join().unwrap();
    wait_until("the host removes its temp file", || {
        temp_files(&dir).is_empty()
    });
    assert_untouched(&dir, &file);
}

/// Large enough that the cut comes long before the end.
const TOTAL: usize = 64 << 20;

/// The connection is cut from the host's side (its sshd session processes killed) while the
/// file streams: the host keeps the old file and removes its temp file; the client gets an
/// error, not a success.
#[tokio::test(flavor = "multi_thread")]
async fn a_connection_cut_by_the_host_leaves_the_old_file() {
    let fx = Fixture::start();
    let (dir, file) = fx.managed_dir("cut");
    // A client waiting for window space may notice the cut only at its command timeout
    // (120 s by default): a short one bounds this test.
    let host = fx.host_timing_out(Duration::from_secs(10)).await;
    let path = file.to_str().unwrap().to_string();
    let write = tokio::spawn(async move { host.put_file(&path, &data(TOTAL), Mode::Keep).await });
    let probe_dir = dir.clone();
    tokio::task::spawn_blocking(move || {
        wait_until("the temp file appears", || {
            !temp_files(&probe_dir).is_empty()
        })
    })
    .await
    .unwrap();
    let pids = fx.sshd.session_pids();
    assert!(!pids.is_empty(), "no sshd session process");
    let received: u64 = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum::<u64>()
        - OLD.len() as u64;
    for pid in pids {
        // SAFETY: kill(2) on processes of the sshd this test started.
        unsafe {
            libc::kill(pid as i32, libc::SIGKILL);
        }
    }
    let result = write.await.unwrap();
    // The cut came mid-transfer (what the pipes still held is far less than what was left).
    assert!(
        received < (TOTAL / 2) as u64,
        "the transfer was nearly done: {received} bytes"
    );
    assert!(result.is_err(), "a cut transfer reported success");
    let probe_dir = dir.clone();
    tokio::task::spawn_blocking(move || {
        wait_until("the host removes its temp file", || {
            temp_files(&probe_dir).is_empty()
        })
    })
    .await
    .unwrap();
    // Whole or untouched, never partial. On a loaded machine the cut sometimes took effect
    // only after the rest had arrived (seen twice in about 15 runs under load); the host then
    // installs the complete, checked file.
    let now = fs::read(&file).unwrap();
    assert!(
        now == OLD || now == data(TOTAL),
        "daemon.json holds {} bytes, neither the old file nor the whole new one",
        now.len()
    );
    assert_eq!(temp_files(&dir), Vec::<String>::new(), "no temp file left");
}

/// A tiny tmpfs over the managed directory: the write fails with the disk's error and the
/// old file stays.
#[tokio::test]
async fn a_full_disk_leaves_the_old_file() {
    let fx = Fixture::start();
    let (dir, file) = fx.managed_dir("full");
    let _mount = Tmpfs::mount(&dir, "64k");
    fs::write(&file, OLD).unwrap();
    let host = fx.host().await;
    let err = host
        .put_file(file.to_str().unwrap(), &data(256 << 10), Mode::Keep)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("No space left on device"), "{err}");
    assert_untouched(&dir, &file);
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A tmpfs mounted over `dir` (needs root), unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Tmpfs {
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status()
            .unwrap();
        assert!(status.success(), "mount tmpfs on {dir:?} (root needed)");
        Tmpfs(dir.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// With a 4 s command timeout, a plain 5 s command is cut off; run detached (as package
/// installs are), it completes, with its arguments. A failing one brings its exit status and
/// output; one past its own bound is reported as still running; nothing is left behind. Each
/// wait is a 1 s slice: 3 s under the timeout, for a loaded machine (2 s was cut in CI).
#[tokio::test]
async fn a_detached_script_outlives_the_command_timeout() {
    let fx = Fixture::start();
    let host = fx.host_timing_out(Duration::from_secs(4)).await;
    let err = host
        .run("sleeping", "sleep 5", &[], None)
        .await
        .unwrap_err();
    assert!(
        format!("{err:#}").contains("did not finish within 4 s"),
        "{err:#}"
    );

    let state = fx.dir.path().join("state");
    let status = state.join("status");
    let run = |script: &'static str, bound: u64| Detached {
        what: "a long script".into(),
        script,
        args: vec!["two words".into()],
        status: status.to_str().unwrap().into(),
        bound: Duration::from_secs(bound),
        slice: Duration::from_secs(1),
    };
    let start = Instant::now();
    run(r#"sleep 5; [ "$1" = "two words" ]"#, 30)
        .run(&host)
        .await
        .unwrap();
    assert!(start.elapsed() >= Duration::from_secs(5));
    assert!(!state.exists(), "the status files are removed");

    let err = run("echo boom >&2; exit 3", 30)
        .run(&host)
        .await
        .unwrap_err();
    let err = format!("{err:#}");
    assert!(err.contains("exit 3") && err.contains("boom"), "{err}");

    let err = run("sleep 4", 1).run(&host).await.unwrap_err();
    assert!(format!("{err:#}").contains("still runs"), "{err:#}");
}
