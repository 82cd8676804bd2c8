//! What `regboot inventory check` prints: hosts by role, references and certificate SANs.

use std::fmt;

use serde::Serialize;

use super::model::{Inventory, Role, Storage, TlsMode};

#[derive(Debug, Serialize)]
pub struct Summary {
    pub file: String,
    pub registry_hosts: Vec<String>,
    pub agent_hosts: Vec<String>,
    pub lb_hosts: Vec<String>,
    /// Image reference prefixes clients may use, like `registry.lab:5000`.
    pub references: Vec<String>,
    pub tls_mode: &'static str,
    pub cert_dns_sans: Vec<String>,
    pub cert_ip_sans: Vec<String>,
    pub storage: &'static str,
    pub users: Vec<String>,
}

impl Summary {
    pub fn new(inv: &Inventory) -> Summary {
        let names = |role| {
            inv.hosts_with(role)
                .map(|h| format!("{} ({})", h.name, h.address))
                .collect()
        };
        Summary {
            file: inv.path.display().to_string(),
            registry_hosts: names(Role::Registry),
            agent_hosts: names(Role::Agent),
            lb_hosts: names(Role::Lb),
            references: inv.references(),
            tls_mode: match inv.tls.mode {
                TlsMode::SelfSigned => "self-signed",
                TlsMode::Provided { .. } => "provided",
                TlsMode::Insecure => "insecure",
            },
            cert_dns_sans: inv.cert_dns_sans(),
            cert_ip_sans: inv.cert_ip_sans().iter().map(|i| i.to_string()).collect(),
            storage: match inv.registry.storage {
                Storage::Filesystem { .. } => "filesystem",
                Storage::S3(_) => "s3",
                Storage::Oss(_) => "oss",
            },
            users: inv.registry.users.iter().map(|u| u.name.clone()).collect(),
        }
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |v: &[String]| {
            if v.is_empty() {
                "-".to_string()
            } else {
                v.join(", ")
            }
        };
        writeln!(f, "{}: ok", self.file)?;
        writeln!(f, "  registry hosts: {}", list(&self.registry_hosts))?;
        writeln!(f, "  agent hosts:    {}", list(&self.agent_hosts))?;
        writeln!(f, "  lb hosts:       {}", list(&self.lb_hosts))?;
        writeln!(f, "  references:     {}", list(&self.references))?;
        writeln!(f, "  storage:        {}", self.storage)?;
        writeln!(f, "  users:          {}", list(&self.users))?;
        writeln!(f, "  tls:            {}", self.tls_mode)?;
        if self.tls_mode != "insecure" {
            writeln!(f, "  certificate DNS SANs: {}", list(&self.cert_dns_sans))?;
            writeln!(f, "  certificate IP SANs:  {}", list(&self.cert_ip_sans))?;
        }
        Ok(())
    }
}
