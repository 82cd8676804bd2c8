//! A change a module wants on a host: a line for people, an optional diff, and the action
//! that makes it so. Modules only compute changes; the runner shows or applies them.

use anyhow::Result;

use crate::host::{Mode, RemoteHost};

#[derive(Debug, Clone)]
pub enum Action {
    /// Write a whole file (atomically).
    PutFile {
        path: String,
        data: Vec<u8>,
        mode: Mode,
    },
    /// Run a root shell script with positional args and optional stdin.
    Script {
        what: String,
        script: String,
        args: Vec<String>,
        stdin: Option<Vec<u8>>,
    },
}

#[derive(Debug, Clone)]
pub struct Change {
    /// One line: what changes, e.g. `write /etc/docker/daemon.json`.
    pub summary: String,
    /// A unified diff for text files; secrets appear only as a redacted digest.
    pub diff: Option<String>,
    pub action: Action,
}

impl Change {
    pub fn put_file(path: &str, data: Vec<u8>, mode: Mode, diff: Option<String>) -> Change {
        Change {
            summary: format!("write {path}"),
            diff,
            action: Action::PutFile {
                path: path.to_string(),
                data,
                mode,
            },
        }
    }

    pub fn script(summary: impl Into<String>, script: &str, args: &[&str]) -> Change {
        let summary = summary.into();
        Change {
            action: Action::Script {
                what: summary.clone(),
                script: script.to_string(),
                args: args.iter().map(|a| a.to_string()).collect(),
                stdin: None,
            },
            summary,
            diff: None,
        }
    }

    pub fn with_stdin(mut self, data: Vec<u8>) -> Change {
        if let Action::Script { stdin, .. } = &mut self.action {
            *stdin = Some(data);
        }
        self
    }

    pub async fn apply(&self, host: &RemoteHost) -> Result<()> {
        match &self.action {
            Action::PutFile { path, data, mode } => host.put_file(path, data, *mode).await,
            Action::Script {
                what,
                script,
                args,
                stdin,
            } => {
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                host.run(what, script, &args, stdin.as_deref())
                    .await
                    .map(|_| ())
            }
        }
    }
}
