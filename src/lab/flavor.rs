//! The container runtime a lab host has.

/// Which container runtime a lab host has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Flavor {
    /// dockerd (on Debian's containerd, which it depends on).
    Docker,
    /// containerd and ctr, no dockerd.
    Containerd,
    /// containerd 2.x (Debian unstable's) and ctr, no dockerd.
    Containerd2,
    /// podman, no dockerd and no containerd.
    Podman,
}

impl Flavor {
    pub fn name(self) -> &'static str {
        match self {
            Flavor::Docker => "docker",
            Flavor::Containerd => "containerd",
            Flavor::Containerd2 => "containerd2",
            Flavor::Podman => "podman",
        }
    }

    /// The unit that must be active once the host booted, besides sshd.
    pub(super) fn service(self) -> Option<&'static str> {
        match self {
            Flavor::Docker => Some("docker"),
            Flavor::Containerd | Flavor::Containerd2 => Some("containerd"),
            Flavor::Podman => None,
        }
    }
}
