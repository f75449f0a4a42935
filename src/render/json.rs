//! Newline-delimited JSON: one object per event, `"type"` tag, `"ts"` in RFC 3339.
//! The schema is documented in `docs/events.md`.

use std::io::Write;
use std::sync::Mutex;
use std::time::SystemTime;

use serde::Serialize;

use super::Sink;
use crate::event::Event;

#[derive(Serialize)]
struct Line<'a> {
    #[serde(flatten)]
    event: &'a Event,
    ts: String,
}

pub struct JsonSink<W: Write + Send> {
    out: Mutex<W>,
}

impl<W: Write + Send> JsonSink<W> {
    pub fn new(out: W) -> Self {
        JsonSink {
            out: Mutex::new(out),
        }
    }
}

/// One event as its JSON line (without the newline).
pub fn to_line(event: &Event) -> String {
    let line = Line {
        event,
        ts: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
    };
    serde_json::to_string(&line).unwrap_or_else(|e| {
        format!(r#"{{"type":"error","message":"cannot encode event: {e}","folder":null}}"#)
    })
}

impl<W: Write + Send> Sink for JsonSink<W> {
    fn emit(&self, event: &Event) {
        let line = to_line(event);
        let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
        // Flush per line: consumers `tail -f` the stream. A closed pipe must not kill the run.
        let _ = writeln!(out, "{line}").and_then(|_| out.flush());
    }
}
