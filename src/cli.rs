//! The command line: flags shared by every command, the subcommands, and dispatch.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{ArgAction, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "regboot",
    version,
    about = "Bootstrap a private Docker registry across a cluster over SSH",
    long_about = "regboot reads an inventory (a YAML file listing your hosts and the registry you \
want), creates a CA and a server certificate, and sets up every host over SSH: the CA in \
docker's certs.d and the OS trust store, /etc/hosts, daemon.json, and the registry container \
itself. Every command is safe to run again: it changes only what differs."
)]
pub struct Cli {
    /// The inventory file describing hosts, registry and TLS (see docs/inventory.md).
    #[arg(short = 'i', long, global = true, env = "REGBOOT_INVENTORY")]
    pub inventory: Option<PathBuf>,

    /// Where regboot keeps what cannot be read back from hosts (CA key, issued keys, http
    /// secret). Default: `.regboot/` beside the inventory.
    #[arg(long, global = true, env = "REGBOOT_STATE_DIR")]
    pub state_dir: Option<PathBuf>,

    /// Output format: text for people, json for scripts, prometheus (`certs check` only)
    /// for a metrics scraper.
    #[arg(short = 'o', long = "output", global = true, value_enum, default_value_t = Format::Text)]
    pub format: Format,

    /// `format` for the commands that print text or JSON (set by `resolve_output`).
    #[arg(skip)]
    pub output: Output,

    /// More detail in logs (-v, -vv).
    #[arg(short, long, global = true, action = ArgAction::Count)]
    pub verbose: u8,

    /// Only errors and the final result.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum Output {
    #[default]
    Text,
    Json,
}

/// What `-o` accepts: every command's text and JSON, and the Prometheus exposition format
/// of `certs check` (refused by the other commands).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
    Prometheus,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Read and validate an inventory file.
    #[command(subcommand)]
    Inventory(InventoryCommand),

    /// Build an offline bundle for air-gapped hosts (`packages.bundle`).
    ///
    /// For every OS release and architecture of the fleet (read from the hosts, or named
    /// with --release for hosts not reachable from here): the packages apply may install with
    /// their dependencies (.debs, resolved by apt for that release), the registry image, and
    /// manifest.json with every file's SHA-256. Run on a machine that reaches the mirrors;
    /// running it again fetches only what is missing, and nothing when the bundle already
    /// holds every package asked for with its files intact (docs/bundle.md).
    Bundle {
        /// The bundle directory (created or completed).
        dir: PathBuf,

        /// Bundle these releases instead of reading the hosts (OS-VERSION-ARCH as os-release
        /// and Debian name them, e.g. debian-12-amd64); repeatable.
        #[arg(long = "release", value_name = "OS-VERSION-ARCH")]
        releases: Vec<String>,

        /// The Debian mirror to download from (default http://deb.debian.org/debian).
        #[arg(long, value_name = "URL")]
        mirror: Option<String>,

        /// Leave the registry image out.
        #[arg(long)]
        no_image: bool,

        /// Resolve every release again against fresh package lists, to take in newer
        /// (security) updates; .debs already there are not downloaded again.
        #[arg(long)]
        refresh: bool,
    },

    /// Print what every host is: OS, init system, docker, sudo, daemon.json.
    ///
    /// Connects to every host (in parallel) and prints what it is: OS, init system, docker,
    /// sudo, daemon.json, connect time. Exit 1 naming each host that failed, and why.
    Facts {
        /// Hosts handled at once.
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u16).range(1..))]
        forks: u16,

        /// Only these hosts: comma-separated names, globs (`node*`), roles (`role:agent`), and
        /// `!pattern` to leave hosts out, as Ansible's --limit reads.
        #[arg(long, value_name = "PATTERN")]
        limit: Option<String>,
    },

    /// Manage the SSH host keys regboot checks (OpenSSH's known_hosts file).
    ///
    /// regboot checks host keys against the same known_hosts file OpenSSH uses.
    #[command(subcommand)]
    KnownHosts(KnownHostsCommand),
    /// A lab of Debian hosts in containers, to rehearse before touching real machines.
    ///
    /// Containerized Debian hosts (systemd, sshd, dockerd) on the local docker engine, with an
    /// inventory that reaches them: rehearse a setup before touching real machines.
    #[command(subcommand)]
    Lab(LabCommand),

    /// Set up every host and the registry, then verify with a push/pull smoke test.
    ///
    /// Sets up every host: CA and certificate, certs.d and trust store, /etc/hosts,
    /// daemon.json, the registry container, then a push/pull smoke test. Safe to run again:
    /// only what differs changes. Exit 0 when every host succeeded, 1 otherwise.
    Apply(ApplyArgs),

    /// Show, per host, what `apply` would change (with diffs), changing nothing.
    ///
    /// Exit 0: nothing to change; 2: changes pending; 1: a host could not be checked.
    Plan(PlaybookArgs),

    /// Run the push/pull smoke test alone.
    ///
    /// Pushes a tiny image from one agent (docker, else podman), pulls it on every host of
    /// the limit through every container runtime it has (docker, containerd, podman), asks
    /// every registry replica directly for the pushed manifest, compares digests, and cleans
    /// up. Exit 1 when a host failed or nothing could be verified, 0 otherwise.
    Verify(PlaybookArgs),

    /// Print a shell completion script.
    ///
    /// For example: `regboot completions bash > /etc/bash_completion.d/regboot`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },

    /// Print the man page (roff).
    ///
    /// For example: `regboot man > /usr/local/share/man/man1/regboot.1`.
    Man,

    /// Registry users.
    #[command(subcommand)]
    User(UserCommand),

    /// Create, check and show the registry's TLS certificates.
    ///
    /// The CA and the server certificate, kept in the state directory.
    #[command(subcommand)]
    Certs(CertsCommand),

    /// Replace the registry certificate (--leaf) or the CA (--ca) without a failed pull.
    ///
    /// --leaf issues a new server certificate (the inventory's names) and rolls it to the
    /// registry hosts one at a time, each healthy again before the next; clients change
    /// nothing. Works when the old certificate has already expired.
    ///
    /// --ca runs a CA rotation in three stages, each ending with the smoke test: (1) every
    /// host trusts the old and the next CA (a second file in certs.d and in the trust
    /// store); (2) the registry certificate is reissued from the new CA and rolled; (3) the
    /// old CA is removed from every host. The stage to run is derived from what the hosts
    /// hold and serve, so a run that was interrupted resumes where it stopped; without
    /// --stage the remaining stages run in order. Replaced CAs and certificates are archived
    /// in the state directory's archive/ with dates.
    ///
    /// Exit 0 when the run completed (its smoke test passed), 1 otherwise.
    Rotate(RotateArgs),

    /// Remove from the hosts exactly what regboot added, and nothing else.
    ///
    /// Removes what regboot added, and nothing the operator owns: the registry container (and its image when regboot brought it), nginx and keepalived
    /// configs (originals put back; packages only when regboot installed them), the
    /// daemon.json keys it merged (replaced values restored), the /etc/hosts block, the CA
    /// in the trust store and certs.d, and /etc/regboot. Each host's manifest
    /// (/etc/regboot/manifest.json, written by apply) says what is regboot's, so no state
    /// directory is needed. The registry's data stays unless --purge-data.
    ///
    /// Without --yes it shows the plan and asks on the terminal; with no terminal it refuses.
    /// Exit 0 when every host was reset (--plan: 0 nothing left, 2 something to remove), 1
    /// otherwise.
    Reset(ResetArgs),

    /// Write the state directory to an encrypted backup file.
    ///
    /// Writes the state directory (CA, keys, http secret, rotation CAs, archive) to FILE,
    /// encrypted with a passphrase (age, scrypt), after a plain manifest (CA fingerprint,
    /// date, inventory digest) that `regboot restore --show FILE` or `head -n 2 FILE` reads
    /// without it. The passphrase comes from $REGBOOT_BACKUP_PASSPHRASE (see
    /// --passphrase-env) or is asked twice on the terminal.
    Backup(BackupArgs),

    /// Put a backup's files back into the state directory.
    ///
    /// Refused when the state directory holds another CA, unless --force (which moves the current directory aside, renamed).
    /// A wrong passphrase is an error and writes nothing.
    Restore(RestoreArgs),

    /// List what every registry replica serves, and whether the replicas agree.
    ///
    /// Reads each replica directly (through its host's SSH connection): repositories, tags, manifest digests and sizes, every page of the
    /// registry's lists; then whether the replicas agree. Exit 0 when they do, 1 otherwise.
    Catalog {
        /// Only these hosts (registry hosts among them are read).
        #[arg(long, value_name = "PATTERN")]
        limit: Option<String>,
    },

    /// Serve a local web page of what every registry replica serves.
    ///
    /// The page lists repositories, tags, digests, sizes, which replicas hold each and which
    /// lack it, read like `catalog` through the SSH connections, so the registry port need not be reachable from here. Listens on
    /// 127.0.0.1 only; prints the page's URL, which holds a random token that every request
    /// needs. Serves until Ctrl-C.
    Ui {
        /// Only these hosts (registry hosts among them are read).
        #[arg(long, value_name = "PATTERN")]
        limit: Option<String>,
        /// The port on 127.0.0.1 (default: a free one, chosen by the system).
        #[arg(long, default_value_t = 0)]
        port: u16,
    },

    /// Write a platform's deployment of the registry to stdout (Marathon).
    ///
    /// The output is for that platform's own tool; regboot renders it and deploys nothing.
    #[command(subcommand)]
    Render(RenderCommand),

    /// Delete the blobs no tagged manifest references, without losing a push.
    ///
    /// Runs `registry garbage-collect --delete-untagged` safely: every replica is rolled to read-only first,
    /// one at a time (pulls go on; a push is refused and must be repeated), the collector
    /// runs once against the storage, then the replicas take pushes again. Prints the blobs
    /// deleted and the bytes freed (measured on filesystem storage). Every registry host
    /// takes part (there is no --limit).
    ///
    /// Exit 0 when the collector ran and the replicas take pushes again, 1 otherwise.
    Gc {
        /// List what would be deleted; change nothing (the replicas stay as they are).
        #[arg(long)]
        dry_run: bool,
        /// How many hosts to connect to at once.
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u16).range(1..))]
        forks: u16,
    },

    /// Renew what is due and nothing else (run daily: `regboot schedule systemd`).
    ///
    /// The registry certificate is reissued and rolled like `rotate --leaf` when it expires
    /// within renew_before_days, no longer names what the inventory asks for, or a registry
    /// host does not serve it. The CA, inside tls.ca_renew_before_days (default: a third of
    /// its lifetime), goes one `rotate --ca` stage further per run, each stage only after the
    /// previous one has been in place for tls.ca_stage_soak (default 24h); a run inside the
    /// soak changes nothing and says until when it waits. Every changing run ends with the
    /// smoke test.
    ///
    /// Exit 0 when nothing was due, 3 when something was renewed, 1 on failure.
    Renew {
        /// How many hosts to connect to and work on at once.
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u16).range(1..))]
        forks: u16,

        /// After the run, write `certs check`'s metrics to PATH (as `certs check --textfile`).
        #[arg(long, value_name = "PATH")]
        textfile: Option<PathBuf>,
    },

    /// Run `regboot renew` on a schedule from the machine regboot runs on.
    #[command(subcommand)]
    Schedule(ScheduleCommand),
}

#[derive(Debug, Subcommand)]
pub enum ScheduleCommand {
    /// Write a systemd timer that runs `regboot renew` daily.
    ///
    /// Writes a systemd service and timer (regboot-renew.service, regboot-renew.timer) that
    /// run `regboot renew -i FILE` daily at a randomized time, catching up a missed run
    /// (Persistent=true), as the user who runs this command. A run while another regboot run
    /// holds the state directory's lock stops at once with exit 1, changing nothing; the next
    /// day's run does what is due. Then: `systemctl daemon-reload && systemctl enable --now
    /// regboot-renew.timer`.
    Systemd {
        /// Print the units (each after a `# NAME` line) instead of writing them.
        #[arg(long)]
        print: bool,
        /// Where to write them.
        #[arg(long, default_value = "/etc/systemd/system", value_name = "DIR")]
        dir: PathBuf,
        /// When the timer fires (systemd.time(7), e.g. `daily`, `*:0/5`).
        #[arg(long, default_value = "daily", value_name = "CALENDAR")]
        on_calendar: String,
        /// The timer's RandomizedDelaySec (a systemd time span: `1h`, `10min`, `0`).
        #[arg(long, default_value = "1h", value_name = "SPAN")]
        randomized_delay: String,
    },
}

#[derive(Debug, clap::Args)]
pub struct BackupArgs {
    /// The backup file to write (mode 0600). (`-o` is the output format of every command.)
    pub file: PathBuf,

    /// The environment variable holding the passphrase; without it set, the terminal asks.
    #[arg(long, default_value = "REGBOOT_BACKUP_PASSPHRASE", value_name = "VAR")]
    pub passphrase_env: String,
}

#[derive(Debug, clap::Args)]
pub struct RestoreArgs {
    /// The backup file.
    pub file: PathBuf,

    /// The environment variable holding the passphrase; without it set, the terminal asks.
    #[arg(long, default_value = "REGBOOT_BACKUP_PASSPHRASE", value_name = "VAR")]
    pub passphrase_env: String,

    /// Replace a state directory that holds another CA (it is moved aside, not deleted).
    #[arg(long)]
    pub force: bool,

    /// Only print the backup's manifest (no passphrase needed); change nothing.
    #[arg(long)]
    pub show: bool,
}

#[derive(Debug, clap::Args)]
pub struct ResetArgs {
    /// Show what would be removed on each host, removing nothing.
    #[arg(long)]
    pub plan: bool,

    /// Do it without asking (needed when there is no terminal to ask on).
    #[arg(long, short = 'y')]
    pub yes: bool,

    /// Also delete the registry's data (registry.data_dir on the registry hosts).
    #[arg(long)]
    pub purge_data: bool,

    /// How many hosts to connect to and work on at once.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u16).range(1..))]
    pub forks: u16,

    /// Only these hosts: comma-separated names, globs (`node*`), roles (`role:agent`), and
    /// `!pattern` to leave hosts out, as Ansible's --limit reads.
    #[arg(long, value_name = "PATTERN")]
    pub limit: Option<String>,
}

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["leaf", "ca"])))]
pub struct RotateArgs {
    /// Reissue the registry's server certificate and roll it out.
    #[arg(long)]
    pub leaf: bool,

    /// Rotate the CA (three stages).
    #[arg(long)]
    pub ca: bool,

    /// Run only this stage of --ca (1, 2 or 3); refused when an earlier one is incomplete.
    #[arg(long, conflicts_with = "leaf", value_parser = clap::value_parser!(u8).range(1..=3))]
    pub stage: Option<u8>,

    /// Validity of the new certificate with --leaf, e.g. `10m`, `12h`, `365d` (default: the
    /// inventory's tls.cert_validity_days). For rehearsals: a certificate shorter than
    /// renew_before_days is reported by `certs check` and renewed by the next `apply`.
    #[arg(long, conflicts_with = "ca", value_parser = crate::rotate::parse_validity)]
    pub cert_validity: Option<time::Duration>,

    /// Show what the run would change on each host, changing nothing, neither on the hosts
    /// nor in the state directory. With --ca: the stage the hosts call for, or with --stage N
    /// a later one, planned as if the stages before it had run.
    #[arg(long)]
    pub plan: bool,

    /// How many hosts to connect to and work on at once.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u16).range(1..))]
    pub forks: u16,

    /// Only these hosts: comma-separated names, globs (`node*`), roles (`role:agent`), and
    /// `!pattern` to leave hosts out, as Ansible's --limit reads.
    #[arg(long, value_name = "PATTERN")]
    pub limit: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct ApplyArgs {
    #[command(flatten)]
    pub run: PlaybookArgs,

    /// When the hosts trust a regboot CA the state directory does not hold (it was lost):
    /// read back from the hosts what can be (the CA's certificate, the registry certificate
    /// and key, the http secret), roll in a new CA the zero-downtime way of `rotate --ca`,
    /// then apply. Never an overwrite.
    #[arg(long, conflicts_with = "limit")]
    pub replace_ca: bool,
}

#[derive(Debug, clap::Args)]
pub struct PlaybookArgs {
    /// Print a unified diff for every file that changes (plan always does, and shows
    /// certificate files as their fields; this adds their raw lines). Secrets are shown only
    /// as a digest. `-v` implies it.
    #[arg(long)]
    pub diff: bool,

    /// How many hosts to connect to and work on at once.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u16).range(1..))]
    pub forks: u16,

    /// Only these hosts: comma-separated names, globs (`node*`), roles (`role:agent`), and
    /// `!pattern` to leave hosts out, as Ansible's --limit reads.
    #[arg(long, value_name = "PATTERN")]
    pub limit: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Print the bcrypt hash of the password on stdin, for `password_hash:`.
    ///
    /// For `password_hash:` in the inventory, so the file never holds the password itself.
    Hash,
}

#[derive(Debug, Subcommand)]
pub enum LabCommand {
    /// Start the lab (or confirm it runs), and write an inventory that reaches it.
    ///
    /// Starts the docker engine, the host image (built once), the network and the hosts, and
    /// writes in DIR an SSH key, known_hosts and an inventory.
    Up {
        /// How many hosts: host1 is the registry, the others agents.
        #[arg(long, default_value_t = crate::lab::DEFAULT_HOSTS)]
        hosts: usize,
        /// What the hosts are for: basic, ha (2 lb, 3 registry on S3, 2 agents, 1 storage), or
        /// runtimes (registry and agent with docker, a containerd-only and a podman-only agent).
        #[arg(long, value_enum, default_value_t)]
        profile: crate::lab::Profile,
        /// The Debian release of the hosts.
        #[arg(long, value_enum, default_value_t)]
        release: crate::lab::Release,
        /// The runtimes profile's containerd host: its release's containerd, or 2 (2.x from
        /// Debian unstable, with --release trixie).
        #[arg(long, value_enum, default_value_t)]
        containerd: crate::lab::ContainerdLine,
        /// A k3s binary (the lab cannot install one): host3 of the runtimes profile runs it as a
        /// single-node k3s server under systemd, for regboot's k3s support.
        #[arg(long)]
        k3s: Option<PathBuf>,
        /// Lab name: several labs with different names run side by side.
        #[arg(long, default_value = crate::lab::DEFAULT_NAME)]
        name: String,
        /// Where to write the key, known_hosts and inventory. Default: .regboot-lab/NAME/
        #[arg(long)]
        dir: Option<PathBuf>,
        /// No package mirror reachable from the hosts (their default route is taken away): install
        /// through `packages.bundle` (docs/bundle.md).
        #[arg(long)]
        air_gapped: bool,
        /// The inventory installs packages from the lab's bundle, built once into the lab
        /// cache (docs/bundle.md), never from the mirror.
        #[arg(long)]
        bundle: bool,
    },
    /// Show the labs on this docker engine (or only --name): hosts, state, addresses.
    Status {
        #[arg(long)]
        name: Option<String>,
    },
    /// Remove the lab's containers, its network and what `lab up` wrote.
    Down {
        #[arg(long, default_value = crate::lab::DEFAULT_NAME)]
        name: String,
        /// The lab's directory, when its hosts are already gone. Default: .regboot-lab/NAME/
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Also remove the cached host and registry images and the lab's build cache.
        #[arg(long)]
        purge: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum RenderCommand {
    /// The Marathon app (DC/OS) that runs the registry, for `dcos marathon app add`.
    ///
    /// Seed 004's app: one instance per registry host, the VIP label (ha.vip,
    /// else the named VIP /regboot-registry), a health check on /, and the config.yml,
    /// certificate, key and htpasswd that `regboot apply` placed on those hosts, mounted
    /// read-only. It carries no secret value. regboot renders it and does not deploy it.
    Marathon,
}

#[derive(Debug, Subcommand)]
pub enum CertsCommand {
    /// Create the CA and the registry's server certificate in the state directory.
    ///
    /// With tls.mode self-signed (the default), regboot keeps its own certificate authority
    /// (CA) in the state directory: a CA certificate (ca.crt) that every host will trust, and
    /// its private key (ca.key, readable only by you). This command creates the CA when there
    /// is none and reuses it otherwise. It then makes sure the registry's server certificate
    /// (registry.crt, its key registry.key, and registry-chain.crt = certificate + CA) names
    /// every address clients may use: the registry hostname and aliases, the HA VIP, every
    /// registry host's addresses, extra_ips, localhost and 127.0.0.1. The certificate is
    /// reissued only when those names changed, when it expires within renew_before_days, or
    /// when the current CA did not sign it; otherwise it is left untouched. `apply` does the
    /// same on every run, so you only need this command to create the files ahead of time.
    ///
    /// With tls.mode provided, nothing is created: your certificate is checked against your
    /// CA and the names the inventory needs, listing exactly the missing ones (exit 1 when
    /// unfit).
    ///
    /// Needs -i inventory.yml. Private keys are never printed.
    Init {
        /// Make a new CA valid this long instead of tls.ca_validity_days, e.g. `30m`: a
        /// short-lived CA to rehearse `regboot renew`'s CA rotation. Refused when the state
        /// directory holds a CA already.
        #[arg(long, value_parser = crate::duration::parse, value_name = "DURATION")]
        ca_validity: Option<time::Duration>,
    },

    /// Report each certificate's time left, like `kubeadm certs check-expiration`.
    ///
    /// Prints one row per certificate (the CA and the registry's server certificate): its
    /// subject, SANs (the names it is valid for), expiry date, time left and issuer. With
    /// -o json the same rows as JSON. The server certificate is also checked against the CA
    /// and against the names the inventory needs.
    ///
    /// Exit status, for scripts and monitoring: 0 when every certificate is valid for longer
    /// than renew_before_days; 1 when one expires within renew_before_days (run `regboot
    /// apply` or `regboot certs init` to renew); 2 when one is expired, missing or invalid.
    ///
    /// With -i inventory.yml and tls.mode self-signed, also what is deployed: the
    /// certificate each registry host serves and the one served on the registry hostname
    /// (and VIP), read by a TLS handshake through SSH, and the CA files on every host
    /// (certs.d and the OS trust store). A host serving a certificate other than the state
    /// directory's, or missing the current CA, counts as invalid (exit 2); --local skips the
    /// hosts. --state-dir DIR alone checks a state directory with renew_before_days = 30.
    Check {
        /// Look at the local files only; connect to no host.
        #[arg(long)]
        local: bool,

        /// Only these hosts: comma-separated names, globs (`node*`), roles (`role:agent`), and
        /// `!pattern` to leave hosts out, as Ansible's --limit reads.
        #[arg(long, conflicts_with = "local", value_name = "PATTERN")]
        limit: Option<String>,

        /// Also write the rows as Prometheus metrics to PATH, atomically (a temp file in the
        /// same directory, then a rename), for node_exporter's textfile collector.
        #[arg(long, value_name = "PATH")]
        textfile: Option<PathBuf>,
    },

    /// Adopt an existing CA (e.g. a backup of a lost state directory).
    ///
    /// Copies it into the state directory. Refused when the state directory holds another CA
    /// (that is `rotate --ca`).
    /// The next `apply` issues a registry certificate from it when needed.
    Import {
        /// The CA certificate (PEM).
        #[arg(long)]
        ca_cert: PathBuf,
        /// The CA's private key (unencrypted PEM); stays 0600 in the state directory.
        #[arg(long)]
        ca_key: PathBuf,
    },

    /// Show the details of the CA and the server certificate (never any key material).
    ///
    /// For each: the file, subject, issuer, serial number, key type, whether it is a CA,
    /// validity dates, SANs and SHA-256 fingerprint (compare it with `openssl x509
    /// -fingerprint -sha256 -noout -in FILE` on a host). -o json prints the same as JSON.
    /// Give -i inventory.yml, or --state-dir DIR alone.
    Show,
}

#[derive(Debug, Subcommand)]
pub enum KnownHostsCommand {
    /// Remove a host's recorded keys, like `ssh-keygen -R`.
    ///
    /// For a host whose keys changed, after a reinstall.
    Forget {
        /// An inventory host name (with -i), `[address]:port`, or an address.
        host: String,
        /// The port, when HOST is a bare address.
        #[arg(long, default_value_t = 22)]
        port: u16,
        /// The known_hosts file (default: the inventory host's, else ~/.ssh/known_hosts).
        #[arg(long)]
        file: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum InventoryCommand {
    /// Validate the inventory and print a summary, or every problem with its place.
    ///
    /// The summary: hosts by role, the registry's references, and the names the server
    /// certificate will carry. Exit 1 with located errors otherwise.
    Check,
}

impl Cli {
    /// Set `output` from `-o` (prometheus prints its metrics where the others print text).
    pub fn resolve_output(&mut self) {
        self.output = match self.format {
            Format::Json => Output::Json,
            Format::Text | Format::Prometheus => Output::Text,
        };
    }

    pub fn init_logging(&self) {
        let level = match (self.quiet, self.verbose) {
            (true, _) => "error",
            (false, 0) => "warn",
            (false, 1) => "info",
            (false, _) => "debug",
        };
        let filter = tracing_subscriber::EnvFilter::try_from_env("REGBOOT_LOG")
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("regboot={level}")));
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_target(false)
            .init();
    }

    /// The inventory path, or an error telling the user how to give one.
    pub fn inventory_path(&self) -> Result<&PathBuf> {
        self.inventory
            .as_ref()
            .context("no inventory given: pass -i inventory.yml (or set REGBOOT_INVENTORY)")
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// `regboot --help` lists each command in one short line; details go to
    /// `regboot help COMMAND` (the doc comment's later paragraphs).
    #[test]
    fn every_command_is_summed_up_in_one_short_line() {
        let mut too_long = Vec::new();
        let mut todo = vec![(String::from("regboot"), super::Cli::command())];
        while let Some((parent, cmd)) = todo.pop() {
            for sub in cmd.get_subcommands() {
                let name = format!("{parent} {}", sub.get_name());
                let about = sub.get_about().map(|a| a.to_string()).unwrap_or_default();
                if about.is_empty() || about.len() > 80 || about.contains('\n') {
                    too_long.push(format!("`{name}`: {about:?}"));
                }
                todo.push((name, sub.clone()));
            }
        }
        assert!(
            too_long.is_empty(),
            "a command's first doc paragraph is its line in --help: make it one line of at most \
             80 characters and move the rest to a paragraph below:\n{}",
            too_long.join("\n")
        );
    }
}
