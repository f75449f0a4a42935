//! Renderers: everything that turns [`Event`]s into output. The engine only knows [`Sink`].

pub mod batch;
pub mod human;
pub mod json;

use crate::event::Event;

/// Where events go. Called from several worker threads at once.
pub trait Sink: Send + Sync {
    fn emit(&self, event: &Event);
}

/// Sends every event to several sinks (human display plus `--events-file`).
pub struct Tee(pub Vec<Box<dyn Sink>>);

impl Sink for Tee {
    fn emit(&self, event: &Event) {
        for s in &self.0 {
            s.emit(event);
        }
    }
}

/// Keeps every event in memory; for tests and for callers that want the stream as data.
#[derive(Default)]
pub struct Collect(pub std::sync::Mutex<Vec<Event>>);

impl Sink for Collect {
    fn emit(&self, event: &Event) {
        if let Ok(mut v) = self.0.lock() {
            v.push(event.clone());
        }
    }
}
