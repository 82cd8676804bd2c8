//! Where the registry CA goes on a host: the OS trust store (for curl, skopeo, containerd,
//! podman) and docker's per-registry `certs.d` directories (which dockerd reads on every pull
//! and push, so no restart is needed).

use std::net::Ipv6Addr;

/// The directory dockerd looks in for `<registry host[:port]>/ca.crt`.
pub const CERTS_D: &str = "/etc/docker/certs.d";

/// OS families by how they manage CA anchors (and packages).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OsFamily {
    /// Debian, Ubuntu and derivatives.
    Debian,
    /// RHEL, CentOS, Rocky, Alma, Fedora, Amazon Linux.
    Rhel,
    /// SLES, openSUSE.
    Suse,
    /// Arch, Manjaro.
    Arch,
    Alpine,
}

/// Where the CA anchor goes and what makes the OS pick it up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrustStore {
    /// Full path of regboot's CA file (the `.crt` suffix is required on Debian and Alpine).
    pub anchor_path: &'static str,
    /// The command (argv) that rebuilds the system bundle after the anchor changes.
    pub update_command: &'static [&'static str],
}

impl OsFamily {
    /// The family from os-release's `ID`, then each word of `ID_LIKE`.
    pub fn from_ids(id: &str, id_like: &str) -> Option<Self> {
        std::iter::once(id)
            .chain(id_like.split_whitespace())
            .find_map(Self::from_id)
    }

    fn from_id(id: &str) -> Option<Self> {
        Some(match id {
            "debian" | "ubuntu" | "raspbian" => Self::Debian,
            "rhel" | "centos" | "fedora" | "rocky" | "almalinux" | "amzn" | "ol" => Self::Rhel,
            "suse" | "opensuse" | "sles" | "opensuse-leap" | "opensuse-tumbleweed" => Self::Suse,
            "arch" | "archlinux" | "manjaro" => Self::Arch,
            "alpine" => Self::Alpine,
            _ => return None,
        })
    }

    pub fn trust_store(self) -> TrustStore {
        match self {
            Self::Debian => TrustStore {
                anchor_path: "/usr/local/share/ca-certificates/regboot-ca.crt",
                update_command: &["update-ca-certificates"],
            },
            Self::Rhel => TrustStore {
                anchor_path: "/etc/pki/ca-trust/source/anchors/regboot-ca.crt",
                update_command: &["update-ca-trust", "extract"],
            },
            Self::Suse => TrustStore {
                anchor_path: "/etc/pki/trust/anchors/regboot-ca.crt",
                update_command: &["update-ca-certificates"],
            },
            Self::Arch => TrustStore {
                anchor_path: "/etc/ca-certificates/trust-source/anchors/regboot-ca.crt",
                update_command: &["trust", "extract-compat"],
            },
            Self::Alpine => TrustStore {
                anchor_path: "/usr/local/share/ca-certificates/regboot-ca.crt",
                update_command: &["update-ca-certificates"],
            },
        }
    }
}

/// The `certs.d` directory name for a registry reached as `host:port`, as it appears in image
/// references: no port for 443 (references to port 443 omit it), IPv6 in brackets.
pub fn certs_d_name(host: &str, port: u16) -> String {
    let host = match host.parse::<Ipv6Addr>() {
        Ok(v6) => format!("[{v6}]"),
        Err(_) => host.to_owned(),
    };
    if port == 443 {
        host
    } else {
        format!("{host}:{port}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_release_maps_to_families() {
        let cases = [
            ("ID=debian\nVERSION_ID=\"12\"\n", Some(OsFamily::Debian)),
            (
                "NAME=\"Ubuntu\"\nID=ubuntu\nID_LIKE=debian\n",
                Some(OsFamily::Debian),
            ),
            (
                "ID=linuxmint\nID_LIKE=\"ubuntu debian\"\n",
                Some(OsFamily::Debian),
            ),
            (
                "ID=\"rocky\"\nID_LIKE=\"rhel centos fedora\"\n",
                Some(OsFamily::Rhel),
            ),
            (
                "ID=\"amzn\"\nID_LIKE=\"centos rhel fedora\"\n",
                Some(OsFamily::Rhel),
            ),
            (
                "ID=\"opensuse-leap\"\nID_LIKE=\"suse opensuse\"\n",
                Some(OsFamily::Suse),
            ),
            ("ID=\"sles\"\nID_LIKE=\"suse\"\n", Some(OsFamily::Suse)),
            ("ID=arch\n", Some(OsFamily::Arch)),
            ("ID=manjaro\nID_LIKE=arch\n", Some(OsFamily::Arch)),
            ("ID=alpine\nVERSION_ID=3.20.0\n", Some(OsFamily::Alpine)),
            ("ID=nixos\n", None),
            ("", None),
        ];
        for (text, want) in cases {
            assert_eq!(
                crate::facts::Os::from_release(text).family,
                want,
                "{text:?}"
            );
        }
        // ID_LIKE must not be mistaken for ID.
        assert_eq!(
            crate::facts::Os::from_release("ID_LIKE=debian\nID=fedora\n").family,
            Some(OsFamily::Rhel)
        );
    }

    #[test]
    fn anchors_and_commands_per_family() {
        let debian = OsFamily::Debian.trust_store();
        assert_eq!(
            debian.anchor_path,
            "/usr/local/share/ca-certificates/regboot-ca.crt"
        );
        assert_eq!(debian.update_command, ["update-ca-certificates"]);
        assert_eq!(
            OsFamily::Rhel.trust_store().update_command,
            ["update-ca-trust", "extract"]
        );
        assert!(
            OsFamily::Suse
                .trust_store()
                .anchor_path
                .starts_with("/etc/pki/trust/anchors/")
        );
        assert!(
            OsFamily::Arch
                .trust_store()
                .anchor_path
                .starts_with("/etc/ca-certificates/trust-source/anchors/")
        );
        for family in [
            OsFamily::Debian,
            OsFamily::Rhel,
            OsFamily::Suse,
            OsFamily::Arch,
            OsFamily::Alpine,
        ] {
            assert!(
                family
                    .trust_store()
                    .anchor_path
                    .ends_with("/regboot-ca.crt")
            );
        }
    }

    #[test]
    fn certs_d_names_follow_image_references() {
        assert_eq!(
            certs_d_name("registry01.dev.com", 5000),
            "registry01.dev.com:5000"
        );
        assert_eq!(
            certs_d_name("registry01.dev.com", 443),
            "registry01.dev.com"
        );
        assert_eq!(certs_d_name("192.168.23.50", 5000), "192.168.23.50:5000");
        assert_eq!(certs_d_name("fd00::0:5", 5000), "[fd00::5]:5000");
    }
}
