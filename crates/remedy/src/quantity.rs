//! Memory quantities as Kubernetes writes them (`170Mi`, `1Gi`, `512M`, `1e9`, `1048576`).

/// Bytes in a Kubernetes memory quantity; `None` when it does not parse.
///
/// ```
/// assert_eq!(hc_remedy::parse_quantity("170Mi"), Some(170 * 1024 * 1024));
/// assert_eq!(hc_remedy::parse_quantity("1G"), Some(1_000_000_000));
/// assert_eq!(hc_remedy::parse_quantity("lots"), None);
/// ```
pub fn parse_quantity(q: &str) -> Option<u64> {
    let q = q.trim();
    let split = q
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(q.len());
    let (num, suffix) = q.split_at(split);
    let n: f64 = num.parse().ok()?;
    let mult: f64 = match suffix {
        "" => 1.0,
        "Ki" => 1024.0,
        "Mi" => 1024.0_f64.powi(2),
        "Gi" => 1024.0_f64.powi(3),
        "Ti" => 1024.0_f64.powi(4),
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "m" => 1e-3,
        s if s.starts_with(['e', 'E']) => 10f64.powi(s[1..].parse().ok()?),
        _ => return None,
    };
    let v = n * mult;
    (v.is_finite() && v >= 0.0).then_some(v.round() as u64)
}

/// Writes bytes the way a person would (`340Mi`, `1Gi`), exactly: the largest binary suffix
/// that divides it, else plain bytes.
pub fn format_quantity(bytes: u64) -> String {
    for (suffix, unit) in [("Gi", 1u64 << 30), ("Mi", 1 << 20), ("Ki", 1 << 10)] {
        if bytes >= unit && bytes.is_multiple_of(unit) {
            return format!("{}{suffix}", bytes / unit);
        }
    }
    bytes.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        for s in ["170Mi", "1Gi", "340Mi", "100Mi", "64Ki"] {
            assert_eq!(format_quantity(parse_quantity(s).unwrap()), s);
        }
        assert_eq!(parse_quantity("1.5Gi"), Some(1_610_612_736));
        assert_eq!(parse_quantity("128974848"), Some(128_974_848));
        assert_eq!(parse_quantity("129e6"), Some(129_000_000));
        assert_eq!(format_quantity(1_000_000), "1000000");
        assert_eq!(parse_quantity("12Xi"), None);
        assert_eq!(parse_quantity(""), None);
    }
}
