//! `--max-messages-per-second` / `--max-bytes-per-second`: one pace shared by all workers,
//! for providers that limit IMAP traffic.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct Throttle {
    messages_per_sec: Option<f64>,
    bytes_per_sec: Option<f64>,
    /// The earliest instant the next message may go.
    next: Mutex<Option<Instant>>,
    /// Set by Ctrl-C: a wait ends early.
    cancel: Option<Arc<AtomicBool>>,
}

impl Throttle {
    pub fn new(messages_per_sec: Option<f64>, bytes_per_sec: Option<f64>) -> Option<Throttle> {
        let valid = |v: Option<f64>| v.filter(|x| *x > 0.0);
        let (m, b) = (valid(messages_per_sec), valid(bytes_per_sec));
        if m.is_none() && b.is_none() {
            return None;
        }
        Some(Throttle {
            messages_per_sec: m,
            bytes_per_sec: b,
            next: Mutex::new(None),
            cancel: None,
        })
    }

    /// Waits end as soon as `cancel` is set (Ctrl-C), so a slow pace never delays stopping.
    pub fn with_cancel(mut self, cancel: Arc<AtomicBool>) -> Throttle {
        self.cancel = Some(cancel);
        self
    }

    fn cancelled(&self) -> bool {
        self.cancel
            .as_ref()
            .is_some_and(|c| c.load(Ordering::SeqCst))
    }

    /// Wait until one message of `bytes` may be sent. Each message books the slot its cost
    /// needs, so the rate holds across threads without bursts beyond one message.
    pub fn acquire(&self, bytes: u64) {
        let cost = {
            let m = self.messages_per_sec.map_or(0.0, |r| 1.0 / r);
            let b = self.bytes_per_sec.map_or(0.0, |r| bytes as f64 / r);
            Duration::from_secs_f64(m.max(b))
        };
        let wait_until = {
            let mut next = self.next.lock().unwrap_or_else(|p| p.into_inner());
            let now = Instant::now();
            let start = next.filter(|n| *n > now).unwrap_or(now);
            *next = Some(start + cost);
            start
        };
        // In slices, to notice Ctrl-C.
        while !self.cancelled() {
            let left = wait_until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            std::thread::sleep(left.min(Duration::from_millis(100)));
        }
    }

    /// Messages per batch that keep progress smooth at this pace.
    pub fn batch_hint(&self) -> usize {
        self.messages_per_sec
            .map_or(50, |r| (r / 4.0).ceil() as usize)
            .clamp(1, 200)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_the_rate() {
        let t = Throttle::new(Some(200.0), None).expect("throttle");
        let start = Instant::now();
        for _ in 0..41 {
            t.acquire(10);
        }
        // 40 intervals of 5 ms.
        let e = start.elapsed();
        assert!(e >= Duration::from_millis(195), "{e:?}");
        assert!(Throttle::new(None, Some(0.0)).is_none());
    }

    #[test]
    fn a_cancelled_wait_ends_at_once() {
        let cancel = Arc::new(AtomicBool::new(false));
        // One message per 1000 s: the second would wait that long.
        let t = Throttle::new(Some(0.001), None)
            .expect("throttle")
            .with_cancel(cancel.clone());
        t.acquire(1);
        cancel.store(true, Ordering::SeqCst);
        t.acquire(1);
    }
}
