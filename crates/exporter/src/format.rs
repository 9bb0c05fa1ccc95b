//! What `/metrics` answers in: OpenMetrics text 1.0.0, or the Prometheus text format 0.0.4 for
//! a scraper that asks only for that (an `Accept` header naming `text/plain` and no
//! `application/openmetrics-text`), as Prometheus's own client libraries negotiate.
//!
//! prometheus-client writes OpenMetrics only; [`encode`] rewrites its output line by line into
//! the 0.0.4 form: counter families named with their `_total` suffix, `info` families as gauges
//! named `_info`, no `# UNIT` and no `# EOF` line, no exemplars, no `_created` samples.

use std::fmt::Write as _;

use prometheus_client::registry::Registry;

use crate::server::OPENMETRICS;

/// The Prometheus text format's content type.
pub const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// An exposition format of `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Format {
    /// OpenMetrics text 1.0.0 ([`OPENMETRICS`]): the default.
    OpenMetrics,
    /// The Prometheus text format 0.0.4 ([`PROMETHEUS_TEXT`]).
    PrometheusText,
}

impl Format {
    /// The `Content-Type` of a response in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::OpenMetrics => OPENMETRICS,
            Format::PrometheusText => PROMETHEUS_TEXT,
        }
    }
}

/// The format for a request's `Accept` header (`""` when it has none): the Prometheus text
/// format when the header names `text/plain` (any version) and no OpenMetrics, both with a
/// quality above 0; OpenMetrics otherwise (no header, `*/*`, a browser's list, Prometheus's
/// default list, which prefers OpenMetrics).
///
/// ```
/// use hc_exporter::{Format, negotiate};
///
/// assert_eq!(negotiate("text/plain;version=0.0.4"), Format::PrometheusText);
/// assert_eq!(negotiate("application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.3,*/*;q=0.2"), Format::OpenMetrics);
/// assert_eq!(negotiate(""), Format::OpenMetrics);
/// ```
pub fn negotiate(accept: &str) -> Format {
    let (mut openmetrics, mut text) = (false, false);
    for range in accept.split(',') {
        let mut parts = range.split(';').map(str::trim);
        let media = parts.next().unwrap_or_default().to_ascii_lowercase();
        let quality = parts
            .filter_map(|p| p.split_once('='))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case("q"))
            .map_or(Some(1.0), |(_, v)| v.trim().parse::<f32>().ok());
        if !quality.is_some_and(|q| q > 0.0) {
            continue;
        }
        match media.as_str() {
            "application/openmetrics-text" => openmetrics = true,
            "text/plain" => text = true,
            _ => {}
        }
    }
    if text && !openmetrics {
        Format::PrometheusText
    } else {
        Format::OpenMetrics
    }
}

/// Encodes every family of `registry` in `format`.
pub fn encode(registry: &Registry, format: Format) -> Result<String, std::fmt::Error> {
    let mut body = String::new();
    prometheus_client::encoding::text::encode(&mut body, registry)?;
    Ok(match format {
        Format::OpenMetrics => body,
        Format::PrometheusText => to_prometheus_text(&body),
    })
}

/// The family being rewritten: its OpenMetrics name and type.
struct FamilyState {
    name: String,
    kind: String,
}

/// Rewrites an OpenMetrics exposition into the Prometheus text format 0.0.4.
fn to_prometheus_text(openmetrics: &str) -> String {
    let mut out = String::with_capacity(openmetrics.len());
    let mut help: Option<&str> = None;
    let mut family: Option<FamilyState> = None;
    for line in openmetrics.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            help = Some(rest);
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, "unknown"));
            let (name_004, kind_004) = match kind {
                "counter" => (format!("{name}_total"), "counter"),
                "info" => (format!("{name}_info"), "gauge"),
                "gauge" | "histogram" | "summary" => (name.to_owned(), kind),
                "stateset" => (name.to_owned(), "gauge"),
                _ => (name.to_owned(), "untyped"),
            };
            if let Some(h) = help.take() {
                let text = h.split_once(' ').map_or("", |(_, t)| t);
                let _ = writeln!(out, "# HELP {name_004} {text}");
            }
            let _ = writeln!(out, "# TYPE {name_004} {kind_004}");
            family = Some(FamilyState {
                name: name.to_owned(),
                kind: kind.to_owned(),
            });
        } else if line.starts_with('#') {
            // `# UNIT`, `# EOF`: not part of 0.0.4.
        } else if !line.is_empty() {
            let sample = without_exemplar(line);
            let created = family.as_ref().is_some_and(|f| {
                matches!(f.kind.as_str(), "counter" | "histogram" | "summary")
                    && sample_name(sample) == format!("{}_created", f.name)
            });
            if !created {
                out.push_str(sample);
                out.push('\n');
            }
        }
    }
    out
}

/// The metric name of a sample line.
fn sample_name(line: &str) -> &str {
    let end = line.find(['{', ' ']).unwrap_or(line.len());
    &line[..end]
}

/// A sample line without its exemplar (` # {...} value`), which 0.0.4 does not have. Label
/// values may hold `#`: the labels are skipped with their quoting first.
fn without_exemplar(line: &str) -> &str {
    let mut labels_end = 0;
    if let Some(open) = line
        .find('{')
        .filter(|o| *o < line.find(' ').unwrap_or(line.len()))
    {
        let (mut quoted, mut escaped) = (false, false);
        for (i, c) in line[open..].char_indices() {
            match c {
                _ if escaped => escaped = false,
                '\\' if quoted => escaped = true,
                '"' => quoted = !quoted,
                '}' if !quoted => {
                    labels_end = open + i + 1;
                    break;
                }
                _ => {}
            }
        }
    }
    match line[labels_end..].find(" # ") {
        Some(at) => &line[..labels_end + at],
        None => line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_follows_what_the_scraper_names() {
        use Format::*;
        let cases = [
            ("", OpenMetrics),
            ("*/*", OpenMetrics),
            ("text/plain", PrometheusText),
            ("text/plain;version=0.0.4;q=1", PrometheusText),
            ("TEXT/PLAIN; version=0.0.4", PrometheusText),
            ("text/plain;version=0.0.4;q=0.3,*/*;q=0.2", PrometheusText),
            ("text/plain;q=0", OpenMetrics),
            ("text/plain;q=nonsense", OpenMetrics),
            ("application/openmetrics-text", OpenMetrics),
            (
                "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3,text/plain;version=0.0.4;q=0.2,*/*;q=0.1",
                OpenMetrics,
            ),
            (
                "application/openmetrics-text;q=0,text/plain;version=0.0.4",
                PrometheusText,
            ),
            (
                "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
                OpenMetrics,
            ),
        ];
        for (accept, want) in cases {
            assert_eq!(negotiate(accept), want, "Accept: {accept}");
        }
    }

    #[test]
    fn openmetrics_is_rewritten_into_the_0_0_4_form() {
        let om = "\
# HELP hc_rounds Completed rounds.
# TYPE hc_rounds counter
hc_rounds_total 3
hc_rounds_created 1700000000.0
# HELP hc_latency_seconds Latency.
# TYPE hc_latency_seconds histogram
# UNIT hc_latency_seconds seconds
hc_latency_seconds_sum 0.5
hc_latency_seconds_count 1
hc_latency_seconds_bucket{le=\"+Inf\"} 1 # {trace=\"a # b\"} 0.5
# HELP hc_build Build.
# TYPE hc_build info
hc_build_info{version=\"0.1.0\"} 1
# HELP hc_up Up.
# TYPE hc_up gauge
hc_up{target=\"10.0.0.1:53 # not an exemplar\"} 1
# EOF
";
        let want = "\
# HELP hc_rounds_total Completed rounds.
# TYPE hc_rounds_total counter
hc_rounds_total 3
# HELP hc_latency_seconds Latency.
# TYPE hc_latency_seconds histogram
hc_latency_seconds_sum 0.5
hc_latency_seconds_count 1
hc_latency_seconds_bucket{le=\"+Inf\"} 1
# HELP hc_build_info Build.
# TYPE hc_build_info gauge
hc_build_info{version=\"0.1.0\"} 1
# HELP hc_up Up.
# TYPE hc_up gauge
hc_up{target=\"10.0.0.1:53 # not an exemplar\"} 1
";
        assert_eq!(to_prometheus_text(om), want);
    }
}
