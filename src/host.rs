//! A connected host: run commands as root, and write files safely.

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

use crate::ssh::{ExecOutput, RemoteCommand, Session};

pub mod detached;

/// Writes stdin to `$1` atomically: a temp file in the same directory, owner kept from the old
/// file, mode `$2` (or the old file's mode when `$2` is `keep`), fsync, rename. EOF alone does
/// not prove the data is whole (a killed client or a cut connection ends the stream early), so
/// the temp file must have `$3` bytes with SHA-256 `$4` before anything replaces the old file;
/// otherwise it is removed, even when the shell is killed by a signal. Files that the container
/// engine bind-mounts (/etc/hosts in a container) refuse rename with EBUSY; those are rewritten
/// in place, like Ansible's unsafe_writes, only once the content has been checked.
pub const PUT_FILE: &str = r#"set -eu
p=$1; mode=$2; size=$3; sum=$4
d=$(dirname "$p")
mkdir -p "$d"
t=$(mktemp "$d/.regboot.XXXXXX")
trap 'rm -f "$t"' EXIT
trap 'exit 129' HUP INT TERM PIPE
cat > "$t"
got_size=$(wc -c < "$t")
got_sum=$(sha256sum < "$t"); got_sum=${got_sum%% *}
if [ "$got_size" -ne "$size" ] || [ "$got_sum" != "$sum" ]; then
  echo "the transfer was cut short: received $got_size of $size bytes (sha256 $got_sum, expected $sum); $p is unchanged" >&2
  exit 3
fi
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

    /// Write `data` to `path` atomically (see `PUT_FILE`), contents through stdin, their
    /// length and SHA-256 as arguments.
    pub async fn put_file(&self, path: &str, data: &[u8], mode: Mode) -> Result<()> {
        let mode = match mode {
            Mode::Set(m) => format!("{m:o}"),
            Mode::Keep => "keep".into(),
        };
        let size = data.len().to_string();
        let sum = hex::encode(Sha256::digest(data));
        self.run(
            &format!("writing {path}"),
            PUT_FILE,
            &[path, &mode, &size, &sum],
            Some(data),
        )
        .await
        .map(|_| ())
    }
}
