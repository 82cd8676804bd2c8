//! The lab's dedicated docker network. It has an explicit subnet and a smaller `--ip-range`, so
//! docker hands containers addresses only from the lower half and the upper half stays free
//! (for a keepalived VIP in HA labs).

use std::net::Ipv4Addr;

use anyhow::{Context, Result, bail};

use super::docker;

/// Candidate subnets are 10.231.K.0/24 for K in 0..=255: the first one no docker network and
/// no route of this machine overlaps is taken.
const BASE: [u8; 2] = [10, 231];

#[derive(Debug, Clone, serde::Serialize)]
pub struct LabNetwork {
    pub name: String,
    /// e.g. 10.231.0.0/24
    pub subnet: String,
    /// e.g. 10.231.0.0/25: where docker puts containers.
    pub ip_range: String,
}

impl LabNetwork {
    /// Host `index`'s fixed address: .10 + index, inside the ip range, so a lab's addresses do
    /// not depend on which container started first.
    pub fn host_address(&self, index: usize) -> Option<Ipv4Addr> {
        let base: Ipv4Addr = self.subnet.split('/').next()?.parse().ok()?;
        let last = u8::try_from(10 + index).ok().filter(|a| *a <= 126)?;
        let [a, b, c, _] = base.octets();
        Some(Ipv4Addr::new(a, b, c, last))
    }

    /// The n-th address (0-based) of the subnet that docker never hands out: .200 + n, up to .254.
    pub fn spare_address(&self, n: u8) -> Option<Ipv4Addr> {
        let base: Ipv4Addr = self.subnet.split('/').next()?.parse().ok()?;
        let last = 200u8.checked_add(n).filter(|a| *a <= 254)?;
        let [a, b, c, _] = base.octets();
        Some(Ipv4Addr::new(a, b, c, last))
    }
}

pub fn name_for(lab: &str) -> String {
    format!("regboot-lab-{lab}")
}

/// The lab's network, created when missing.
pub fn ensure(lab: &str) -> Result<LabNetwork> {
    let name = name_for(lab);
    if let Some(net) = inspect(&name)? {
        return Ok(net);
    }
    let taken = routes();
    for k in 0..=255u8 {
        let net = Ipv4Addr::new(BASE[0], BASE[1], k, 0);
        if taken
            .iter()
            .any(|(dest, mask)| overlaps(net, 24, *dest, *mask))
        {
            continue;
        }
        let subnet = format!("{net}/24");
        let ip_range = format!("{net}/25");
        let created = docker::run([
            "network",
            "create",
            "--driver",
            "bridge",
            "--subnet",
            &subnet,
            "--ip-range",
            &ip_range,
            "--label",
            &format!("io.regboot.lab={lab}"),
            &name,
        ]);
        match created {
            Ok(_) => {
                return Ok(LabNetwork {
                    name,
                    subnet,
                    ip_range,
                });
            }
            // Another docker network (perhaps a lab started at the same moment) holds it.
            Err(err) if format!("{err:#}").contains("overlap") => continue,
            Err(err) => return Err(err).context(format!("creating the lab network {name}")),
        }
    }
    bail!(
        "no free /24 in {}.{}.0.0/16 for the lab network: remove unused docker networks \
         (`docker network ls`, `regboot lab status`)",
        BASE[0],
        BASE[1]
    )
}

pub fn inspect(name: &str) -> Result<Option<LabNetwork>> {
    if !docker::succeeds(&["network", "inspect", name]) {
        return Ok(None);
    }
    let out = docker::run([
        "network",
        "inspect",
        "--format",
        "{{range .IPAM.Config}}{{.Subnet}} {{.IPRange}}{{end}}",
        name,
    ])?;
    let mut parts = out.split_whitespace();
    match (parts.next(), parts.next()) {
        (Some(subnet), Some(ip_range)) => Ok(Some(LabNetwork {
            name: name.to_string(),
            subnet: subnet.to_string(),
            ip_range: ip_range.to_string(),
        })),
        _ => bail!(
            "docker network {name} exists but was not made by regboot lab (no subnet and ip \
             range): remove it with `docker network rm {name}`"
        ),
    }
}

/// This machine's IPv4 routes (destination, prefix length) from /proc/net/route, except the
/// default route. Docker's own networks appear here too once created.
fn routes() -> Vec<(Ipv4Addr, u8)> {
    let table = std::fs::read_to_string("/proc/net/route").unwrap_or_default();
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let dest = u32::from_str_radix(f.get(1)?, 16).ok()?;
            let mask = u32::from_str_radix(f.get(7)?, 16).ok()?;
            // The kernel prints the address's bytes as a little-endian number.
            let dest = Ipv4Addr::from(dest.to_le_bytes());
            let prefix = mask.count_ones() as u8;
            (prefix > 0).then_some((dest, prefix))
        })
        .collect()
}

fn overlaps(a: Ipv4Addr, a_len: u8, b: Ipv4Addr, b_len: u8) -> bool {
    let len = a_len.min(b_len);
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    u32::from(a) & mask == u32::from(b) & mask
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlap_uses_the_shorter_prefix() {
        let lab = Ipv4Addr::new(10, 231, 4, 0);
        assert!(overlaps(lab, 24, Ipv4Addr::new(10, 0, 0, 0), 8));
        assert!(!overlaps(lab, 24, Ipv4Addr::new(10, 231, 5, 0), 24));
        assert!(!overlaps(lab, 24, Ipv4Addr::new(172, 17, 0, 0), 16));
    }

    #[test]
    fn spare_addresses_stay_outside_the_ip_range() {
        let net = LabNetwork {
            name: "n".into(),
            subnet: "10.231.7.0/24".into(),
            ip_range: "10.231.7.0/25".into(),
        };
        assert_eq!(net.spare_address(0), Some(Ipv4Addr::new(10, 231, 7, 200)));
        assert_eq!(net.spare_address(55), None);
        assert_eq!(net.host_address(1), Some(Ipv4Addr::new(10, 231, 7, 11)));
        assert_eq!(net.host_address(200), None);
    }
}
