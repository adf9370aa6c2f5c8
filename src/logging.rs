//! Logging setup: a level filter and one of three formats on stderr — `text` for people,
//! `json` and `logfmt` for log pipelines (Loki, Elasticsearch). logfmt lines carry the time, the
//! level, the target, the open spans (collection, region, job) with their fields, the message and
//! the event's fields, as `key=value` with values quoted when they need it.

use std::fmt;

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

use crate::config::LogFormat;
use crate::util::UtcTime;

/// Install the global logger; a second call (tests) is a no-op.
pub fn init(level: &str, format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_new(level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Logfmt => builder.with_ansi(false).event_format(Logfmt).try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// The logfmt event format.
pub struct Logfmt;

/// A logfmt value: bare when it has no space, quote, `=` or control character, else quoted with
/// `"` and `\` escaped.
pub fn logfmt_value(v: &str) -> String {
    let bare = !v.is_empty()
        && !v
            .chars()
            .any(|c| c == ' ' || c == '"' || c == '=' || c == '\\' || c.is_control());
    if bare {
        return v.to_string();
    }
    let mut out = String::with_capacity(v.len() + 2);
    out.push('"');
    for c in v.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

struct Fields {
    message: Option<String>,
    rest: Vec<(String, String)>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = Some(value.to_string());
        } else {
            self.rest
                .push((field.name().to_string(), value.to_string()));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let v = format!("{value:?}");
        if field.name() == "message" {
            self.message = Some(v);
        } else {
            self.rest.push((field.name().to_string(), v));
        }
    }
}

impl<S, N> FormatEvent<S, N> for Logfmt
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        let ts = UtcTime::from_unix(now.as_secs() as i64).iso8601();
        let ts = format!("{}.{:03}Z", ts.trim_end_matches('Z'), now.subsec_millis());
        let meta = event.metadata();
        write!(
            writer,
            "ts={ts} level={} target={}",
            meta.level().as_str().to_ascii_lowercase(),
            logfmt_value(meta.target())
        )?;
        if let Some(scope) = ctx.event_scope() {
            let names: Vec<&str> = scope.from_root().map(|s| s.name()).collect();
            write!(writer, " span={}", logfmt_value(&names.join("/")))?;
            if let Some(scope) = ctx.event_scope() {
                for span in scope.from_root() {
                    let ext = span.extensions();
                    if let Some(fields) = ext.get::<FormattedFields<N>>() {
                        if !fields.is_empty() {
                            write!(writer, " {fields}")?;
                        }
                    }
                }
            }
        }
        let mut fields = Fields {
            message: None,
            rest: Vec::new(),
        };
        event.record(&mut fields);
        if let Some(m) = &fields.message {
            write!(writer, " msg={}", logfmt_value(m))?;
        }
        for (k, v) in &fields.rest {
            write!(writer, " {k}={}", logfmt_value(v))?;
        }
        writeln!(writer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_quoted_only_when_needed() {
        assert_eq!(logfmt_value("limit_error"), "limit_error");
        assert_eq!(logfmt_value("cn-hangzhou"), "cn-hangzhou");
        assert_eq!(logfmt_value(""), "\"\"");
        assert_eq!(logfmt_value("job failed"), "\"job failed\"");
        assert_eq!(logfmt_value("a=b"), "\"a=b\"");
        assert_eq!(logfmt_value("say \"hi\"\n"), "\"say \\\"hi\\\"\\n\"");
    }
}
