//! Durations as people write them on a command line or in the inventory: a number and a unit
//! (s, m, h, d), e.g. `30s`, `10m`, `24h`, `365d` (`--cert-validity`, `--ca-validity`,
//! `tls.ca_stage_soak`).

use time::Duration;

pub fn parse(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("{text:?} has no unit: use s, m, h or d (e.g. 10m)"))?;
    let (n, unit) = text.split_at(split);
    let n: i64 = n
        .parse()
        .map_err(|_| format!("{text:?}: expected a number then a unit, e.g. 10m"))?;
    let d = match unit {
        "s" => Duration::seconds(n),
        "m" => Duration::minutes(n),
        "h" => Duration::hours(n),
        "d" => Duration::days(n),
        _ => {
            return Err(format!(
                "{text:?}: unknown unit {unit:?} (use s, m, h or d)"
            ));
        }
    };
    if d <= Duration::ZERO {
        return Err(format!("{text:?}: a duration must be positive"));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(parse("10m").unwrap(), Duration::minutes(10));
        assert_eq!(parse("365d").unwrap(), Duration::days(365));
        assert_eq!(parse("30s").unwrap(), Duration::seconds(30));
        assert_eq!(parse("24h").unwrap(), Duration::hours(24));
        assert!(parse("10").unwrap_err().contains("no unit"));
        assert!(parse("0m").is_err());
        assert!(parse("5y").unwrap_err().contains("unknown unit"));
    }
}
