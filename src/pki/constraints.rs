//! X.509 name constraints (RFC 5280 4.2.1.10) on regboot's CA: the CA may vouch for the
//! registry's names and addresses and nothing else, so its key cannot mint a certificate for
//! another site that the hosts' OS trust stores would accept.
//!
//! The extension is critical and lists permitted subtrees only: DNS names (a name covers
//! itself and its subdomains, as RFC 5280 defines it) and IP ranges. A verifier refuses a
//! certificate with a DNS or IP SAN outside them (Go, OpenSSL, rustls/webpki all do).
//! E-mail and URI names are confined to the host `invalid` (RFC 6761: it never resolves), so
//! the CA vouches for no mailbox and no URI either. rcgen cannot write URI subtrees, so the
//! extension is encoded here (`to_extension`).

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use anyhow::{Result, anyhow, bail};
use rcgen::CustomExtension;
use serde::{Serialize, Serializer};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;

use super::spec::LeafSpec;

/// An IP range: an address and a prefix length (`10.0.0.0/24`, `fd00::/64`, `192.0.2.7/32`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IpRange {
    addr: IpAddr,
    prefix: u8,
}

impl IpRange {
    /// The range `addr/prefix`, with host bits cleared. `prefix` must fit the family.
    pub fn new(addr: IpAddr, prefix: u8) -> Result<Self> {
        let max = Self::max_prefix(addr);
        if prefix > max {
            bail!("prefix /{prefix} is longer than {max} bits");
        }
        let addr = match addr {
            IpAddr::V4(a) => IpAddr::from((u32::from(a) & mask32(prefix)).to_be_bytes()),
            IpAddr::V6(a) => IpAddr::from((u128::from(a) & mask128(prefix)).to_be_bytes()),
        };
        Ok(Self { addr, prefix })
    }

    /// Exactly one address (/32 or /128).
    pub fn host(addr: IpAddr) -> Self {
        Self {
            addr,
            prefix: Self::max_prefix(addr),
        }
    }

    fn max_prefix(addr: IpAddr) -> u8 {
        if addr.is_ipv4() { 32 } else { 128 }
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                u32::from(ip) & mask32(self.prefix) == u32::from(net)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                u128::from(ip) & mask128(self.prefix) == u128::from(net)
            }
            _ => false,
        }
    }

    /// A range for `tls.permitted_ip_ranges`: parsed, and refused when `too_wide`.
    pub fn parse_permitted(s: &str) -> Result<Self> {
        let range: Self = s.parse()?;
        match range.too_wide() {
            Some(why) => Err(anyhow!(why)),
            None => Ok(range),
        }
    }

    /// Wider than a CA for one registry may vouch for, with the reason: IPv4 shorter than /8
    /// (10.0.0.0/8, the widest private block, is the most one organisation holds), IPv6
    /// shorter than /32 (a whole provider's allocation; a site gets a /48).
    fn too_wide(&self) -> Option<String> {
        let (min, why) = match self.addr {
            IpAddr::V4(_) => (8, "wider than 10.0.0.0/8, the largest private IPv4 block"),
            IpAddr::V6(_) => (32, "wider than a provider's /32 (a site holds a /48)"),
        };
        (self.prefix < min).then(|| {
            format!(
                "{self} is {why}: a CA permitted it could vouch for addresses of other networks"
            )
        })
    }

    /// The extension's encoding: the address, then the mask.
    fn to_der(self) -> Vec<u8> {
        match self.addr {
            IpAddr::V4(a) => [a.octets(), mask32(self.prefix).to_be_bytes()].concat(),
            IpAddr::V6(a) => [a.octets(), mask128(self.prefix).to_be_bytes()].concat(),
        }
    }

    /// From the extension's encoding: the address then the mask (8 or 32 bytes).
    fn from_der(raw: &[u8]) -> Result<Self> {
        let (addr, mask): (IpAddr, &[u8]) = match raw.len() {
            8 => (IpAddr::from(<[u8; 4]>::try_from(&raw[..4])?), &raw[4..]),
            32 => (IpAddr::from(<[u8; 16]>::try_from(&raw[..16])?), &raw[16..]),
            n => bail!("an IP range in nameConstraints has {n} bytes (expected 8 or 32)"),
        };
        let prefix: u32 = mask.iter().map(|b| b.leading_ones()).sum();
        Self::new(addr, u8::try_from(prefix)?)
    }
}

fn mask32(prefix: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0)
}

fn mask128(prefix: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0)
}

impl fmt::Display for IpRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// `ADDR/PREFIX`, or a bare address for exactly that address.
impl FromStr for IpRange {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Self> {
        let bad = || anyhow!("\"{s}\" is not an IP range (expected e.g. 10.0.0.0/24 or fd00::/64)");
        match s.split_once('/') {
            None => Ok(Self::host(s.parse().map_err(|_| bad())?)),
            Some((addr, prefix)) => {
                let addr: IpAddr = addr.parse().map_err(|_| bad())?;
                let prefix: u8 = prefix.parse().map_err(|_| bad())?;
                Self::new(addr, prefix).map_err(|e| anyhow!("\"{s}\": {e}"))
            }
        }
    }
}

impl Serialize for IpRange {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// The one host e-mail (rfc822Name) and URI names may name: reserved, it never resolves.
const NOWHERE: &str = "invalid";

/// A DER element: `tag`, the definite length, `content`.
fn der(tag: u8, content: &[u8]) -> Vec<u8> {
    let len = content.len();
    let mut out = vec![tag];
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

/// The names a CA may vouch for (its permitted subtrees).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Constraints {
    /// Permitted DNS names, each with its subdomains.
    pub dns: Vec<String>,
    /// Permitted IP ranges.
    pub ips: Vec<IpRange>,
}

impl Constraints {
    /// The constraints for a CA that signs `leaf`: `domains` (or, when empty, exactly the
    /// leaf's DNS names) and `ranges` (or, when empty, exactly the leaf's addresses). The
    /// leaf's `localhost` and `127.0.0.1` (the health check's tunnel) are always permitted.
    pub fn for_leaf(leaf: &LeafSpec, domains: &[String], ranges: &[IpRange]) -> Self {
        let mut out = Self::default();
        let loopback = |d: &String| d.eq_ignore_ascii_case("localhost");
        let dns: Vec<String> = if domains.is_empty() {
            leaf.dns.clone()
        } else {
            domains
                .iter()
                .cloned()
                .chain(leaf.dns.iter().filter(|d| loopback(d)).cloned())
                .collect()
        };
        for d in dns {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            if !out.dns.contains(&d) {
                out.dns.push(d);
            }
        }
        let ips: Vec<IpRange> = if ranges.is_empty() {
            leaf.ips.iter().copied().map(IpRange::host).collect()
        } else {
            ranges
                .iter()
                .copied()
                .chain(
                    leaf.ips
                        .iter()
                        .filter(|ip| ip.is_loopback())
                        .copied()
                        .map(IpRange::host),
                )
                .collect()
        };
        for r in ips {
            if !out.ips.contains(&r) {
                out.ips.push(r);
            }
        }
        out
    }

    /// Whether a DNS name falls in a permitted subtree: the name itself or a subdomain.
    pub fn permits_dns(&self, name: &str) -> bool {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        self.dns.iter().any(|base| {
            name == *base
                || (name.len() > base.len()
                    && name.ends_with(base.as_str())
                    && name.as_bytes()[name.len() - base.len() - 1] == b'.')
        })
    }

    pub fn permits_ip(&self, ip: IpAddr) -> bool {
        self.ips.iter().any(|r| r.contains(ip))
    }

    /// The leaf's names (DNS, then IPs) that fall outside: a CA with these constraints
    /// cannot vouch for them, and clients would refuse a certificate carrying them.
    pub fn outside(&self, leaf: &LeafSpec) -> Vec<String> {
        leaf.dns
            .iter()
            .filter(|d| !self.permits_dns(d))
            .cloned()
            .chain(
                leaf.ips
                    .iter()
                    .filter(|ip| !self.permits_ip(**ip))
                    .map(IpAddr::to_string),
            )
            .collect()
    }

    /// One line: `DNS: a, b; IP: 10.0.0.1/32`.
    pub fn summary(&self) -> String {
        let ips: Vec<String> = self.ips.iter().map(IpRange::to_string).collect();
        format!("DNS: {}; IP: {}", self.dns.join(", "), ips.join(", "))
    }

    /// The critical nameConstraints extension (RFC 5280 4.2.1.10): the DNS names and IP
    /// ranges, then e-mail and URI names confined to `NOWHERE`.
    pub(crate) fn to_extension(&self) -> Result<CustomExtension> {
        if self.dns.is_empty() && self.ips.is_empty() {
            bail!("name constraints need at least one permitted name");
        }
        let mut subtrees = Vec::new();
        let mut subtree = |tag: u8, name: &[u8]| subtrees.extend(der(0x30, &der(tag, name)));
        for d in &self.dns {
            if d.is_empty() || d.starts_with('.') || d.contains('*') || !d.is_ascii() {
                bail!("\"{d}\" cannot be a permitted DNS name (a plain domain, no wildcard)");
            }
            subtree(0x82, d.as_bytes());
        }
        for r in &self.ips {
            subtree(0x87, &r.to_der());
        }
        subtree(0x81, NOWHERE.as_bytes());
        subtree(0x86, NOWHERE.as_bytes());
        let value = der(0x30, &der(0xa0, &subtrees));
        let mut ext = CustomExtension::from_oid_content(&[2, 5, 29, 30], value);
        ext.set_criticality(true);
        Ok(ext)
    }

    /// The permitted subtrees of `cert`'s nameConstraints extension; `None` when it has none.
    /// Other name types (e-mail, URI, directory names) are not regboot's and are skipped;
    /// excluded subtrees are reported as an error (regboot never writes them).
    pub(crate) fn of_cert(cert: &X509Certificate<'_>) -> Result<Option<Self>> {
        let Some(ext) = cert
            .name_constraints()
            .map_err(|e| anyhow!("invalid nameConstraints extension: {e}"))?
        else {
            return Ok(None);
        };
        let mut out = Self::default();
        for subtree in ext.value.permitted_subtrees.iter().flatten() {
            match &subtree.base {
                GeneralName::DNSName(d) => out.dns.push(d.to_ascii_lowercase()),
                GeneralName::IPAddress(raw) => out.ips.push(IpRange::from_der(raw)?),
                _ => {}
            }
        }
        Ok(Some(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::ca::{Ca, CaSpec};
    use crate::pki::inspect;
    use time::Duration;

    fn leaf() -> LeafSpec {
        LeafSpec {
            dns: vec![
                "registry.lab".into(),
                "reg.corp.example".into(),
                "localhost".into(),
            ],
            ips: vec![
                "10.0.0.5".parse().unwrap(),
                "fd00::5".parse().unwrap(),
                "127.0.0.1".parse().unwrap(),
            ],
            validity: Duration::days(30),
            renew_before: Duration::days(1),
            key_algorithm: Default::default(),
        }
    }

    #[test]
    fn ranges_parse_normalize_and_contain() {
        let r: IpRange = "10.1.2.3/16".parse().unwrap();
        assert_eq!(r.to_string(), "10.1.0.0/16");
        assert!(r.contains("10.1.255.1".parse().unwrap()));
        assert!(!r.contains("10.2.0.1".parse().unwrap()));
        assert!(!r.contains("::1".parse().unwrap()));
        assert_eq!(
            "192.0.2.7".parse::<IpRange>().unwrap().to_string(),
            "192.0.2.7/32"
        );
        let v6: IpRange = "fd00::1/64".parse().unwrap();
        assert_eq!(v6.to_string(), "fd00::/64");
        assert!(v6.contains("fd00::abcd".parse().unwrap()));
        assert!("10.0.0.0/33".parse::<IpRange>().is_err());
        assert!("nope/8".parse::<IpRange>().is_err());
        assert!(
            "0.0.0.0/0"
                .parse::<IpRange>()
                .unwrap()
                .contains("8.8.8.8".parse().unwrap())
        );
    }

    #[test]
    fn default_constraints_are_exactly_the_leafs_names() {
        let c = Constraints::for_leaf(&leaf(), &[], &[]);
        assert_eq!(c.dns, ["registry.lab", "reg.corp.example", "localhost"]);
        assert_eq!(
            c.ips.iter().map(|r| r.to_string()).collect::<Vec<_>>(),
            ["10.0.0.5/32", "fd00::5/128", "127.0.0.1/32"]
        );
        assert!(c.outside(&leaf()).is_empty());
        assert!(c.permits_dns("REGISTRY.lab."));
        assert!(c.permits_dns("a.registry.lab"), "RFC 5280: subdomains too");
        assert!(!c.permits_dns("evilregistry.lab"));
        assert!(!c.permits_dns("example.com"));
        assert!(!c.permits_ip("10.0.0.6".parse().unwrap()));
    }

    #[test]
    fn configured_domains_and_ranges_replace_the_leafs_names() {
        let domains = vec!["corp.example".to_string()];
        let ranges = vec!["10.0.0.0/24".parse().unwrap()];
        let c = Constraints::for_leaf(&leaf(), &domains, &ranges);
        assert_eq!(c.dns, ["corp.example", "localhost"]);
        assert_eq!(
            c.ips.iter().map(|r| r.to_string()).collect::<Vec<_>>(),
            ["10.0.0.0/24", "127.0.0.1/32"]
        );
        assert_eq!(c.outside(&leaf()), ["registry.lab", "fd00::5"]);
    }

    #[test]
    fn a_new_ca_carries_them_critical_and_they_read_back() {
        let c = Constraints::for_leaf(&leaf(), &[], &["10.0.0.0/24".parse().unwrap()]);
        let ca = Ca::generate(&CaSpec {
            constraints: Some(c.clone()),
            ..CaSpec::default()
        })
        .unwrap();
        assert_eq!(ca.info().name_constraints.as_ref(), Some(&c));
        // The extension itself, read with x509-parser: critical, permitted subtrees only.
        let blocks = inspect::pem_certs(ca.cert_pem()).unwrap();
        let cert = inspect::parse(&blocks[0]).unwrap();
        let ext = cert.name_constraints().unwrap().unwrap();
        assert!(ext.critical);
        assert!(ext.value.excluded_subtrees.is_none());
        let permitted = ext.value.permitted_subtrees.as_ref().unwrap();
        assert_eq!(permitted.len(), 3 + 2 + 2);
        assert!(matches!(
            permitted[0].base,
            GeneralName::DNSName("registry.lab")
        ));
        match &permitted[3].base {
            GeneralName::IPAddress(raw) => assert_eq!(*raw, &[10, 0, 0, 0, 255, 255, 255, 0]),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            permitted[5].base,
            GeneralName::RFC822Name("invalid")
        ));
        assert!(matches!(permitted[6].base, GeneralName::URI("invalid")));
        // An unconstrained CA has no extension.
        let plain = Ca::generate(&CaSpec::default()).unwrap();
        assert_eq!(plain.info().name_constraints, None);
    }

    #[test]
    fn bad_permitted_names_are_refused() {
        let c = Constraints {
            dns: vec!["*.example.com".into()],
            ips: vec![],
        };
        assert!(c.to_extension().is_err());
        assert!(Constraints::default().to_extension().is_err());
    }

    #[test]
    fn ranges_wider_than_one_organisation_are_named() {
        for wide in ["0.0.0.0/0", "10.0.0.0/7", "::/0", "fc00::/7", "2001::/31"] {
            let r: IpRange = wide.parse().unwrap();
            let why = r.too_wide().unwrap_or_else(|| panic!("{wide} passed"));
            assert!(why.contains("other networks"), "{why}");
        }
        for fine in [
            "10.0.0.0/8",
            "192.168.0.0/16",
            "2001:db8::/32",
            "fd12:3456::/48",
        ] {
            assert_eq!(fine.parse::<IpRange>().unwrap().too_wide(), None, "{fine}");
        }
    }

    #[test]
    fn long_extensions_use_the_long_length_form() {
        assert_eq!(der(0x04, &[7; 3]), [0x04, 3, 7, 7, 7]);
        let long = der(0x04, &[0; 300]);
        assert_eq!(&long[..4], &[0x04, 0x82, 0x01, 0x2c]);
        assert_eq!(long.len(), 304);
    }
}
