//! A lab for one test: `TestLab::up("name", 3)` starts containerized hosts under a name unique
//! to this test process, in a temporary directory, and `Drop` takes them down again (also when
//! the test panics). End-to-end tests (apply, rotate, HA) build on it.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use regboot::lab::{self, Lab, LabHost, LabOptions};

pub struct TestLab {
    pub lab: Lab,
    // Kept so the directory lives as long as the lab; `down` removes it first.
    _dir: tempfile::TempDir,
}

impl TestLab {
    /// Bring up `hosts` hosts for the test `test` (a short name: letters, digits, '-').
    pub fn up(test: &str, hosts: usize) -> TestLab {
        Self::up_profile(test, hosts, lab::Profile::Basic)
    }

    /// Like [`up`](Self::up) with a profile (`Profile::Ha` has its own fixed hosts).
    pub fn up_profile(test: &str, hosts: usize, profile: lab::Profile) -> TestLab {
        Self::up_with(test, hosts, profile, lab::Release::Bookworm)
    }

    /// Like [`up_profile`](Self::up_profile) on hosts of a Debian `release`.
    pub fn up_with(
        test: &str,
        hosts: usize,
        profile: lab::Profile,
        release: lab::Release,
    ) -> TestLab {
        Self::up_options(
            test,
            LabOptions {
                hosts,
                profile,
                release,
                ..LabOptions::default()
            },
        )
    }

    /// Whether test labs install from the lab's cached bundle: every one does, so no test
    /// waits on the Debian mirror (built once per machine under the lab cache's lock,
    /// docs/testing.md). REGBOOT_LAB_PACKAGES=mirror installs from the mirror instead, to
    /// compare.
    pub fn from_bundle() -> bool {
        std::env::var("REGBOOT_LAB_PACKAGES").as_deref() != Ok("mirror")
    }

    /// A lab of `opts`, named for the test and in a directory of its own.
    pub fn up_options(test: &str, opts: LabOptions) -> TestLab {
        let dir = tempfile::tempdir().expect("temp dir for the lab");
        let name = format!("t{}-{test}", std::process::id());
        let lab = lab::up(&LabOptions {
            name,
            dir: Some(dir.path().join("lab")),
            bundle: Self::from_bundle(),
            ..opts
        })
        .unwrap_or_else(|e| panic!("lab up for {test}: {e:#}"));
        TestLab { lab, _dir: dir }
    }

    /// The host by inventory name (host1, ...).
    pub fn host(&self, name: &str) -> &LabHost {
        self.lab
            .hosts
            .iter()
            .find(|h| h.name == name)
            .unwrap_or_else(|| panic!("the lab has no {name}"))
    }

    /// Run `command` on `host` through OpenSSH's client with the lab's key and known_hosts,
    /// host keys checked strictly.
    pub fn ssh(&self, host: &LabHost, command: &str) -> Output {
        self.ssh_with_stdin(host, command, None)
    }

    /// Like [`ssh`](Self::ssh), with `stdin` fed from a file.
    pub fn ssh_with_stdin(&self, host: &LabHost, command: &str, stdin: Option<&Path>) -> Output {
        let mut c = Command::new("ssh");
        c.args(ssh_options(&self.lab))
            .arg("-p")
            .arg(host.port.to_string())
            .arg(format!("{}@{}", host.user, host.address))
            .arg(command);
        if let Some(file) = stdin {
            c.stdin(std::fs::File::open(file).expect("stdin file"));
        }
        c.output().expect("run ssh")
    }

    /// Run `script` (any text: it travels base64-encoded) with sh as root on `host`; its
    /// trimmed stdout, panicking unless it succeeds.
    pub fn root_script(&self, host: &str, script: &str) -> String {
        use base64::Engine;
        let encoded = base64::engine::general_purpose::STANDARD.encode(script);
        self.ssh_ok(
            self.host(host),
            &format!("echo {encoded} | base64 -d | sudo -n sh"),
        )
    }

    /// Like [`ssh`](Self::ssh), panicking with the command's stderr unless it succeeds;
    /// returns trimmed stdout.
    pub fn ssh_ok(&self, host: &LabHost, command: &str) -> String {
        let out = self.ssh(host, command);
        assert!(
            out.status.success(),
            "`{command}` on {} failed ({}): {}",
            host.name,
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// The HA lab's S3 keys (its `s3.env`), as the environment the inventory names.
    pub fn s3_env(&self) -> Vec<(String, String)> {
        let env_file = self.lab.s3_env.as_ref().expect("the HA lab writes s3.env");
        std::fs::read_to_string(env_file)
            .expect("read s3.env")
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// `regboot ARGS` on the lab's inventory with the HA lab's S3 keys in its environment.
    pub fn regboot_s3(&self, args: &[&str]) -> Output {
        self.regboot_s3_on(&self.lab.inventory_path, args)
    }

    /// `regboot ARGS -i INVENTORY` with the HA lab's S3 keys in its environment.
    pub fn regboot_s3_on(&self, inventory: &Path, args: &[&str]) -> Output {
        crate::support::cli::regboot_env(inventory, args, &self.s3_env())
    }

    /// Install `packages` (the tests' own tools: curl, prometheus-node-exporter) on `host`
    /// from the lab's bundle, with apt and the bundle's files only: no mirror is asked.
    pub fn install(&self, host: &str, packages: &[&str]) {
        let dir = lab::bundle::ensure(self.lab.release).expect("the lab's bundle");
        let key = lab::bundle::key(self.lab.release).to_string();
        let manifest = regboot::bundle::Manifest::load(&dir).expect("the bundle's manifest");
        let release = &manifest.releases[&key];
        let mut files = vec![regboot::bundle::INDEX];
        for p in packages {
            let closure = release.packages.get(*p);
            let closure = closure.unwrap_or_else(|| panic!("the lab's bundle has no {p}"));
            files.extend(closure.iter().map(String::as_str));
        }
        let tar = tempfile::NamedTempFile::new().expect("temp file");
        let status = Command::new("tar")
            .arg("-C")
            .arg(dir.join(&key))
            .arg("-cf")
            .arg(tar.path())
            .args(&files)
            .status()
            .expect("run tar");
        assert!(status.success(), "tar of the bundle's files");
        let receive = "sudo -n sh -c 'rm -rf /tmp/lab-debs && mkdir /tmp/lab-debs && \
                       tar -x -C /tmp/lab-debs'";
        let out = self.ssh_with_stdin(self.host(host), receive, Some(tar.path()));
        assert!(out.status.success(), "sending the bundle's files: {out:?}");
        self.root_script(
            host,
            &format!(
                r#"set -eu
export DEBIAN_FRONTEND=noninteractive
d=/tmp/lab-debs; t=$(mktemp -d)
mkdir -p "$t/lists/partial" "$t/cache/archives/partial" "$t/parts"
echo "deb [trusted=yes] file:$d ./" > "$t/sources.list"
a() {{
  apt-get -qq -o Dir::Etc::SourceList="$t/sources.list" -o Dir::Etc::SourceParts="$t/parts" \
    -o Dir::State::Lists="$t/lists" -o Dir::Cache="$t/cache" -o APT::Sandbox::User=root "$@"
}}
a update
a install -y --no-install-recommends {} >/dev/null
rm -rf "$d" "$t"
"#,
                packages.join(" ")
            ),
        );
    }

    /// What reset must put back on `host`: every path under /etc and
    /// /usr/local/share/ca-certificates with its type, mode and symlink target, and each
    /// regular file's SHA-256; then what `more` (shell lines) prints.
    pub fn fingerprint(&self, host: &str, more: &str) -> String {
        let paths = r#"set -eu
find /etc /usr/local/share/ca-certificates -xdev -printf '%y %m %p -> %l\n' | LC_ALL=C sort
find /etc /usr/local/share/ca-certificates -xdev -type f -exec sha256sum {} + | LC_ALL=C sort -k2
"#;
        self.root_script(host, &format!("{paths}{more}"))
    }
}

/// OpenSSH client options for the lab: only its key, only its known_hosts, strict checking.
pub fn ssh_options(lab: &Lab) -> Vec<String> {
    vec![
        "-o".into(),
        "BatchMode=yes".into(),
        "-o".into(),
        "StrictHostKeyChecking=yes".into(),
        "-o".into(),
        format!("UserKnownHostsFile={}", lab.known_hosts_path.display()),
        "-o".into(),
        "GlobalKnownHostsFile=/dev/null".into(),
        "-o".into(),
        "IdentitiesOnly=yes".into(),
        "-o".into(),
        format!("ConnectTimeout={}", Duration::from_secs(10).as_secs()),
        "-i".into(),
        lab.key_path.display().to_string(),
    ]
}

impl Drop for TestLab {
    fn drop(&mut self) {
        if let Err(e) = lab::down(&self.lab.name, Some(&self.lab.dir), false) {
            eprintln!("lab down {}: {e:#}", self.lab.name);
        }
    }
}
