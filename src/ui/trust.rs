//! The page's trust view: the rows `certs check` builds (the CA and the registry certificate
//! in the state directory, what each registry host and client-facing name serves, each host's
//! copies of the CA), each with the date it is due for renewal.

use serde::Serialize;
use time::Duration;
use time::format_description::well_known::Rfc3339;

use crate::pki::CheckRow;

#[derive(Debug, Serialize)]
pub struct Trust {
    pub renew_before_days: i64,
    pub rows: Vec<TrustRow>,
    /// Why there is nothing to check (tls.mode insecure or provided).
    pub note: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct TrustRow {
    #[serde(flatten)]
    pub row: CheckRow,
    /// not_after less renew_before_days: when `regboot certs renew` / `rotate` is due.
    pub renew_on: Option<String>,
}

impl Trust {
    pub fn of(rows: Vec<CheckRow>, renew_before: Duration) -> Trust {
        Trust {
            renew_before_days: renew_before.whole_days(),
            rows: rows
                .into_iter()
                .map(|row| TrustRow {
                    renew_on: row
                        .not_after
                        .and_then(|t| (t - renew_before).format(&Rfc3339).ok()),
                    row,
                })
                .collect(),
            note: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::CheckStatus;

    #[test]
    fn the_renewal_date_is_renew_before_ahead_of_expiry() {
        let mut row = CheckRow::unreadable("ca@host1", "host1", Some("lacks".into()));
        row.not_after = Some(time::macros::datetime!(2027-03-31 00:00 UTC));
        let trust = Trust::of(vec![row], Duration::days(30));
        let json = serde_json::to_value(&trust).unwrap();
        assert_eq!(json["renew_before_days"], 30);
        assert_eq!(json["rows"][0]["renew_on"], "2027-03-01T00:00:00Z");
        assert_eq!(json["rows"][0]["name"], "ca@host1");
        assert_eq!(trust.rows[0].row.status, CheckStatus::Invalid);
    }
}
