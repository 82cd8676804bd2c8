//! One SSH connection to one host, for the whole run; commands run on channels over it.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use russh::{ChannelMsg, Disconnect, Pty};
use tokio::sync::Semaphore;

use super::Target;
use super::dial::{Connection, Dialer};
use super::error::{ConnectError, ExecError};
use super::quote::{RemoteCommand, quote};

/// Channels open at once on one connection; sshd's MaxSessions defaults to 10.
const CHANNELS_PER_SESSION: usize = 4;
const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(120);

/// What a remote command left behind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutput {
    pub status: u32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl ExecOutput {
    pub fn success(&self) -> bool {
        self.status == 0
    }

    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// The last lines of stderr, for error messages.
    pub fn stderr_tail(&self) -> String {
        let text = String::from_utf8_lossy(&self.stderr);
        let lines: Vec<&str> = text.trim_end().lines().collect();
        lines[lines.len().saturating_sub(5)..].join("\n")
    }
}

pub struct Session {
    target: Target,
    conn: Connection,
    /// Kept open while this session runs over it.
    _bastion: Option<Arc<Connection>>,
    connect_time: Duration,
    channels: Semaphore,
    command_timeout: Duration,
    /// Commands run so far (each one channel, about one round trip): for benchmarks.
    commands_run: AtomicUsize,
    /// Commands kept running for as long as the session lives (see `hold_as_root`).
    held: std::sync::Mutex<Vec<russh::Channel<russh::client::Msg>>>,
}

impl Session {
    /// Connect and authenticate to one host. For many hosts use [`super::connect_all`] or
    /// [`super::run_all`], which share keys, bastions and handshake limits.
    pub async fn connect(target: &Target) -> Result<Session, ConnectError> {
        Session::connect_with(&Dialer::default(), target).await
    }

    pub(crate) async fn connect_with(
        dialer: &Dialer,
        target: &Target,
    ) -> Result<Session, ConnectError> {
        let start = Instant::now();
        let (conn, bastion) = dialer.connect(target).await?;
        Ok(Session {
            target: target.clone(),
            conn,
            _bastion: bastion,
            connect_time: start.elapsed(),
            held: Default::default(),
            channels: Semaphore::new(CHANNELS_PER_SESSION),
            command_timeout: DEFAULT_COMMAND_TIMEOUT,
            commands_run: AtomicUsize::new(0),
        })
    }

    pub fn target(&self) -> &Target {
        &self.target
    }

    /// From the first TCP packet to authenticated (bastion included).
    pub fn connect_time(&self) -> Duration {
        self.connect_time
    }

    /// How many commands (channels) this session has run.
    pub fn commands_run(&self) -> usize {
        self.commands_run.load(Ordering::Relaxed)
    }

    /// How long one command may run before [`ExecError::Timeout`] (default 120 s).
    pub fn set_command_timeout(&mut self, timeout: Duration) {
        self.command_timeout = timeout;
    }

    /// Run `command` as the login user, streaming `stdin` to it, and wait for the channel to
    /// close. A non-zero exit status is not an error here: it is in the output.
    pub async fn exec(
        &self,
        command: &RemoteCommand,
        stdin: Option<&[u8]>,
    ) -> Result<ExecOutput, ExecError> {
        self.run(command.as_str(), stdin, false).await
    }

    /// Run `command` as root: directly when the user is root, else through `sudo -n`. Servers
    /// whose sudoers has `requiretty` get a PTY (stdout and stderr then arrive merged in
    /// stdout, and stdin goes through a private temp file, since a PTY cannot carry binary
    /// data or an end-of-file).
    pub async fn exec_as_root(
        &self,
        command: &RemoteCommand,
        stdin: Option<&[u8]>,
    ) -> Result<ExecOutput, ExecError> {
        if !self.target.sudo {
            return self.exec(command, stdin).await;
        }
        let sudo = command.sudo();
        let out = self.run(sudo.as_str(), stdin, false).await?;
        if out.success() {
            return Ok(out);
        }
        let err = String::from_utf8_lossy(&out.stderr);
        if err.contains("a password is required") {
            return Err(self.sudo_password_required());
        }
        if !err.contains("must have a tty") {
            return Ok(out);
        }
        let Some(data) = stdin else {
            return self
                .run(sudo.as_str(), None, true)
                .await
                .and_then(|o| self.check_pty_sudo(o));
        };
        let staged = self
            .exec(
                &RemoteCommand::script(
                    "umask 077 && f=$(mktemp) && cat > \"$f\" && printf %s \"$f\"",
                ),
                Some(data),
            )
            .await?;
        if !staged.success() {
            return Ok(staged);
        }
        let file = quote(&staged.stdout_text());
        let script = format!("{sudo} < {file}; s=$?; rm -f {file}; exit $s");
        let out = self
            .run(RemoteCommand::script(&script).as_str(), None, true)
            .await?;
        self.check_pty_sudo(out)
    }

    fn check_pty_sudo(&self, out: ExecOutput) -> Result<ExecOutput, ExecError> {
        if !out.success() && String::from_utf8_lossy(&out.stdout).contains("a password is required")
        {
            return Err(self.sudo_password_required());
        }
        Ok(out)
    }

    fn sudo_password_required(&self) -> ExecError {
        ExecError::SudoPasswordRequired {
            host: self.target.name.clone(),
            user: self.target.user.clone(),
        }
    }

    async fn run(
        &self,
        command: &str,
        stdin: Option<&[u8]>,
        pty: bool,
    ) -> Result<ExecOutput, ExecError> {
        let failed = |reason: String| ExecError::Channel {
            host: self.target.name.clone(),
            command: command.to_string(),
            reason,
        };
        let _permit = self
            .channels
            .acquire()
            .await
            .map_err(|e| failed(e.to_string()))?;
        self.commands_run.fetch_add(1, Ordering::Relaxed);
        let work = async {
            let channel = self.start(command, pty).await.map_err(failed)?;
            let (mut reader, writer) = channel.split();
            let send = async {
                if let Some(data) = stdin {
                    writer.data(data).await?;
                }
                writer.eof().await
            };
            let receive = async {
                let (mut stdout, mut stderr, mut status, mut signal) =
                    (Vec::new(), Vec::new(), None, None);
                while let Some(msg) = reader.wait().await {
                    match msg {
                        ChannelMsg::Data { data } => stdout.extend_from_slice(&data),
                        ChannelMsg::ExtendedData { data, ext: 1 } => {
                            stderr.extend_from_slice(&data)
                        }
                        ChannelMsg::ExitStatus { exit_status } => status = Some(exit_status),
                        ChannelMsg::ExitSignal { signal_name, .. } => signal = Some(signal_name),
                        _ => {}
                    }
                }
                (stdout, stderr, status, signal)
            };
            // Send and receive at once: a command may fill its output before reading all input.
            // A command that exits without reading its input makes the send fail; its exit
            // status is what counts.
            let (_, (stdout, stderr, status, signal)) = tokio::join!(send, receive);
            match status {
                Some(status) => Ok(ExecOutput {
                    status,
                    stdout,
                    stderr,
                }),
                None => Err(failed(match signal {
                    Some(sig) => format!("killed by signal {sig:?}"),
                    None => "the server closed the channel without an exit status".into(),
                })),
            }
        };
        tokio::time::timeout(self.command_timeout, work)
            .await
            .map_err(|_| ExecError::Timeout {
                host: self.target.name.clone(),
                command: command.to_string(),
                timeout: self.command_timeout,
            })?
    }

    /// A channel running `command` (with a PTY: no echo, no \n -> \r\n rewriting).
    async fn start(
        &self,
        command: &str,
        pty: bool,
    ) -> Result<russh::Channel<russh::client::Msg>, String> {
        let channel = self
            .conn
            .channel_open_session()
            .await
            .map_err(|e| e.to_string())?;
        if pty {
            let modes = [(Pty::ECHO, 0), (Pty::OPOST, 0), (Pty::ONLCR, 0)];
            channel
                .request_pty(true, "dumb", 80, 24, 0, 0, &modes)
                .await
                .map_err(|e| e.to_string())?;
        }
        channel
            .exec(true, command)
            .await
            .map_err(|e| e.to_string())?;
        Ok(channel)
    }

    /// Start `command` as root and keep it running while this session lives: its stdin stays
    /// open until the connection closes (or the client dies), so whatever it holds, such as a
    /// lock, is released by the server then and never goes stale. Returns the first line the
    /// command prints (or all it printed, if it ended first): the caller reads its meaning.
    pub async fn hold_as_root(&self, command: &RemoteCommand) -> Result<String, ExecError> {
        let line = if self.target.sudo {
            command.sudo()
        } else {
            command.clone()
        };
        let failed = |reason: String| ExecError::Channel {
            host: self.target.name.clone(),
            command: line.to_string(),
            reason,
        };
        let work = async {
            for pty in [false, true] {
                let mut channel = self.start(line.as_str(), pty).await.map_err(failed)?;
                let mut out = Vec::new();
                while !out.contains(&b'\n') {
                    match channel.wait().await {
                        Some(ChannelMsg::Data { data } | ChannelMsg::ExtendedData { data, .. }) => {
                            out.extend_from_slice(&data)
                        }
                        Some(ChannelMsg::Eof | ChannelMsg::Close) | None => break,
                        Some(_) => {}
                    }
                }
                let text = String::from_utf8_lossy(&out).trim_end().to_string();
                if !pty && self.target.sudo && text.contains("must have a tty") {
                    continue;
                }
                self.held
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(channel);
                return Ok(text);
            }
            Err(failed("sudo asked for a TTY even with one".into()))
        };
        tokio::time::timeout(self.command_timeout, work)
            .await
            .map_err(|_| ExecError::Timeout {
                host: self.target.name.clone(),
                command: line.to_string(),
                timeout: self.command_timeout,
            })?
    }

    /// A TCP connection opened by the host to `host:port` (as the host sees it), carried over
    /// this SSH connection (a direct-tcpip channel, like `ssh -L`). Lets regboot talk to a
    /// service on a host without a route to it and without any client program there.
    pub async fn tunnel(
        &self,
        host: &str,
        port: u16,
    ) -> Result<russh::ChannelStream<russh::client::Msg>, russh::Error> {
        let channel = self
            .conn
            .channel_open_direct_tcpip(host, u32::from(port), "127.0.0.1", 0)
            .await?;
        Ok(channel.into_stream())
    }

    /// A connection to the unix socket `path` on the host (a direct-streamlocal channel, like
    /// `ssh -L local.sock:path`), opened by sshd as the login user: a runtime's API is reached
    /// with no program started on the host. Fails when that user may not open the socket, or
    /// sshd forbids it (`AllowStreamLocalForwarding no`).
    pub async fn stream_local(
        &self,
        path: &str,
    ) -> Result<russh::ChannelStream<russh::client::Msg>, russh::Error> {
        let channel = self.conn.channel_open_direct_streamlocal(path).await?;
        Ok(channel.into_stream())
    }

    /// Say goodbye to the server (dropping the session also closes the connection).
    pub async fn close(self) {
        let _ = self
            .conn
            .disconnect(Disconnect::ByApplication, "", "en")
            .await;
    }
}
