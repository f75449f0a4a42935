//! Newline-delimited JSON: one object per event, `"type"` tag, `"ts"` in RFC 3339, and in
//! batch runs `"job"` naming the account. The schema is documented in `docs/events.md`.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use serde::Serialize;

use super::Sink;
use crate::event::Event;

#[derive(Serialize)]
struct Line<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    job: Option<&'a str>,
    #[serde(flatten)]
    event: &'a Event,
    ts: String,
}

type Out = Arc<Mutex<Box<dyn Write + Send>>>;

pub struct JsonSink {
    out: Out,
    job: Option<String>,
}

impl JsonSink {
    pub fn new(out: impl Write + Send + 'static) -> Self {
        JsonSink {
            out: Arc::new(Mutex::new(Box::new(out))),
            job: None,
        }
    }

    /// A sink on the same output whose lines carry `"job": job`.
    pub fn tagged(&self, job: &str) -> JsonSink {
        JsonSink {
            out: self.out.clone(),
            job: Some(job.to_string()),
        }
    }
}

/// One event as its JSON line (without the newline).
pub fn to_line(event: &Event) -> String {
    line_for(None, event)
}

fn line_for(job: Option<&str>, event: &Event) -> String {
    let line = Line {
        job,
        event,
        ts: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
    };
    serde_json::to_string(&line).unwrap_or_else(|e| {
        format!(r#"{{"type":"error","message":"cannot encode event: {e}","folder":null}}"#)
    })
}

impl Sink for JsonSink {
    fn emit(&self, event: &Event) {
        let line = line_for(self.job.as_deref(), event);
        let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
        // Flush per line: consumers `tail -f` the stream. A closed pipe must not kill the run.
        let _ = writeln!(out, "{line}").and_then(|_| out.flush());
    }
}
