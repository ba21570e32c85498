//! Envoy custom metrics: defined on first use, ids cached per VM.
//!
//! Every metric update is a host call (a crossing between V8 and Envoy,
//! about 0.8 µs of CPU each: issue 17), and a routed request makes about
//! ten. So the routing filter's sink holds counter increments and gauge
//! values in the VM and sends them on its root's tick ([`FLUSH_PERIOD`]):
//! under load one call per metric per period instead of one per request.
//! Envoy's own stats sinks flush every 5 s and Prometheus scrapes every
//! 15 s or so, so a count that waits up to a quarter of a second is not
//! seen late by anyone. Histograms cannot be summed in the VM (each value
//! is one sample) and are sent at once.

use std::time::Duration;

use hashbrown::HashMap;
use model_router_core::metrics::{Kind, Sample};

use crate::host::Host;

/// How long a batched counter or gauge waits for its host call at most:
/// the routing root's tick period.
pub const FLUSH_PERIOD: Duration = Duration::from_millis(250);

#[derive(Default)]
pub struct MetricSink {
    ids: HashMap<String, u32>,
    /// `Some` when updates are batched: counter sums and latest gauge
    /// values by metric id, waiting for [`MetricSink::flush`].
    pending: Option<HashMap<u32, (Kind, u64)>>,
}

impl MetricSink {
    /// A sink whose counters and gauges wait for [`MetricSink::flush`].
    pub fn batched() -> MetricSink {
        MetricSink {
            ids: HashMap::new(),
            pending: Some(HashMap::new()),
        }
    }

    pub fn record(&mut self, host: &impl Host, samples: &[Sample]) {
        for sample in samples {
            let id = match self.ids.get(sample.name.as_str()) {
                Some(id) => *id,
                None => {
                    let Some(id) = host.define_metric(sample.kind, &sample.name) else {
                        continue;
                    };
                    self.ids.insert(sample.name.clone(), id);
                    id
                }
            };
            // Envoy refuses a counter increment of 0 (BadArgument): the
            // counter is defined (it shows 0) and the call is saved.
            if sample.kind == Kind::Counter && sample.value == 0 {
                continue;
            }
            match (&mut self.pending, sample.kind) {
                (Some(pending), Kind::Counter) => {
                    let sum = &mut pending.entry(id).or_insert((Kind::Counter, 0)).1;
                    *sum = sum.saturating_add(sample.value);
                }
                (Some(pending), Kind::Gauge) => {
                    pending.insert(id, (Kind::Gauge, sample.value));
                }
                _ => host.update_metric(sample.kind, id, sample.value),
            }
        }
    }

    /// Sends what waits: one host call per metric updated since the last flush.
    pub fn flush(&mut self, host: &impl Host) {
        if let Some(pending) = &mut self.pending {
            for (id, (kind, value)) in pending.drain() {
                host.update_metric(kind, id, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::FakeHost;

    fn sample(kind: Kind, name: &str, value: u64) -> Sample {
        Sample {
            kind,
            name: name.to_string(),
            value,
        }
    }

    #[test]
    fn a_batched_sink_sums_counters_keeps_the_last_gauge_and_sends_histograms_at_once() {
        let host = FakeHost::default();
        let mut sink = MetricSink::batched();
        for value in [1, 2, 0, 4] {
            sink.record(
                &host,
                &[
                    sample(Kind::Counter, "c", value),
                    sample(Kind::Gauge, "g", value),
                    sample(Kind::Histogram, "h", value),
                ],
            );
        }
        // Defined at once (a counter shows 0 before its first flush).
        assert_eq!(host.metric_names().len(), 3);
        assert_eq!(host.metric("h"), vec![1, 2, 0, 4]);
        assert!(host.metric("c").is_empty() && host.metric("g").is_empty());
        sink.flush(&host);
        // One update each: the sum of the increments, the last gauge value.
        assert_eq!(host.metric("c"), vec![7]);
        assert_eq!(host.metric("g"), vec![4]);
        sink.flush(&host);
        assert_eq!(host.metric("c"), vec![7], "nothing waits after a flush");
    }

    #[test]
    fn an_unbatched_sink_sends_every_update() {
        let host = FakeHost::default();
        let mut sink = MetricSink::default();
        sink.record(&host, &[sample(Kind::Counter, "c", 2)]);
        sink.record(&host, &[sample(Kind::Counter, "c", 3)]);
        assert_eq!(host.metric("c"), vec![2, 3]);
    }
}
