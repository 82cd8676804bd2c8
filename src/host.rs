//! A connected host: run commands as root, and write files safely.

use anyhow::{Context, Result, bail};

use crate::ssh::{ExecOutput, RemoteCommand, Session};

/// Writes stdin to `$1` atomically: a temp file in the same directory, owner kept from the old
/// file, mode `$2` (or the old file's mode when `$2` is `keep`), fsync, rename. Files that the
/// container engine bind-mounts (/etc/hosts in a container) refuse rename with EBUSY; those
/// are rewritten in place, like Ansible's unsafe_writes.
const PUT_FILE: &str = r#"set -eu
p=$1; mode=$2
d=$(dirname "$p")
mkdir -p "$d"
t=$(mktemp "$d/.regboot.XXXXXX")
trap 'rm -f "$t"' EXIT
cat > "$t"
if [ -e "$p" ]; then
  chown --reference="$p" "$t" 2>/dev/null || true
  [ "$mode" = keep ] && chmod --reference="$p" "$t"
fi
[ "$mode" = keep ] || chmod "$mode" "$t"
sync "$t" 2>/dev/null || sync
if ! mv -f "$t" "$p" 2>/dev/null; then
  cat "$t" > "$p"
fi
"#;

/// One host of the run, reached over one SSH session.
pub struct RemoteHost {
    pub session: Session,
}

/// How a written file's mode is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Exactly this mode.
    Set(u32),
    /// The existing file's mode (0644 for a new file, from the umask).
    Keep,
}

impl RemoteHost {
    pub fn new(session: Session) -> Self {
        RemoteHost { session }
    }

    /// The host's inventory name.
    pub fn name(&self) -> &str {
        &self.session.target().name
    }

    /// Run a shell script as root with positional `args` (`$1`...), streaming `stdin`.
    /// A non-zero exit is returned, not raised: the caller decides what it means.
    pub async fn script(
        &self,
        script: &str,
        args: &[&str],
        stdin: Option<&[u8]>,
    ) -> Result<ExecOutput> {
        let cmd = RemoteCommand::new("sh")
            .arg("-c")
            .arg(script)
            .arg("regboot")
            .args(args.iter().copied());
        self.session
            .exec_as_root(&cmd, stdin)
            .await
            .context("the command could not run")
    }

    /// Like `script`, but a non-zero exit is an error carrying `what` and stderr's tail.
    pub async fn run(
        &self,
        what: &str,
        script: &str,
        args: &[&str],
        stdin: Option<&[u8]>,
    ) -> Result<ExecOutput> {
        let out = self.script(script, args, stdin).await?;
        if !out.success() {
            bail!(
                "{what} failed (exit {}): {}",
                out.status,
                out.stderr_tail().trim()
            );
        }
        Ok(out)
    }

    /// Write `data` to `path` atomically (see `PUT_FILE`), contents through stdin.
    pub async fn put_file(&self, path: &str, data: &[u8], mode: Mode) -> Result<()> {
        let mode = match mode {
            Mode::Set(m) => format!("{m:o}"),
            Mode::Keep => "keep".into(),
        };
        self.run(
            &format!("writing {path}"),
            PUT_FILE,
            &[path, &mode],
            Some(data),
        )
        .await
        .map(|_| ())
    }
}
