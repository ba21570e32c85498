//! What each request looked like when it arrived, for tests to assert on.

use std::collections::VecDeque;
use std::sync::Mutex;

use serde::Serialize;

/// Records kept at most; older ones are dropped first.
pub const DEFAULT_MAX_RECORDS: usize = 10_000;

/// One received request.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Record {
    /// Arrival number in this process, from 0 (not reset by clearing).
    pub seq: u64,
    /// The provider name (`--name`).
    pub provider: String,
    pub method: String,
    /// The URI path, without the query.
    pub path: String,
    /// The query string, without `?`, when there is one.
    pub query: Option<String>,
    /// `HTTP/1.1` or `HTTP/2.0`.
    pub version: String,
    /// Every header in arrival order, as `[name, value]` (names lowercase).
    pub headers: Vec<(String, String)>,
    /// The body as UTF-8 (invalid bytes replaced).
    pub body: String,
    /// The body's length in bytes.
    pub body_len: usize,
    /// The body's top-level `model` string, when it is JSON with one.
    pub model: Option<String>,
    /// The `content-length` header's value, as sent.
    pub content_length: Option<String>,
    /// The fault item applied, e.g. `gpt-4o=429`.
    pub fault: Option<String>,
    /// The TLS server name the connection asked for (None: plain HTTP, or no SNI).
    pub sni: Option<String>,
    /// Whether the request came over TLS.
    pub tls: bool,
}

/// The bounded log of records.
#[derive(Debug)]
pub struct Recorder {
    enabled: bool,
    max: usize,
    records: Mutex<VecDeque<Record>>,
}

impl Recorder {
    pub fn new(enabled: bool, max: usize) -> Recorder {
        Recorder {
            enabled,
            max: max.max(1),
            records: Mutex::new(VecDeque::new()),
        }
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    pub fn push(&self, record: Record) {
        if !self.enabled {
            return;
        }
        if let Ok(mut records) = self.records.lock() {
            while records.len() >= self.max {
                records.pop_front();
            }
            records.push_back(record);
        }
    }

    /// All records, oldest first, as a JSON array.
    pub fn to_json(&self) -> String {
        match self.records.lock() {
            Ok(records) => serde_json::to_string(&*records).unwrap_or_else(|_| "[]".to_string()),
            Err(_) => "[]".to_string(),
        }
    }

    /// Forgets every record; returns how many there were.
    pub fn clear(&self) -> usize {
        match self.records.lock() {
            Ok(mut records) => {
                let n = records.len();
                records.clear();
                n
            }
            Err(_) => 0,
        }
    }

    pub fn len(&self) -> usize {
        self.records.lock().map(|r| r.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn record(seq: u64) -> Record {
        Record {
            seq,
            provider: "p".into(),
            method: "POST".into(),
            path: "/v1/chat/completions".into(),
            query: None,
            version: "HTTP/1.1".into(),
            headers: vec![("content-type".into(), "application/json".into())],
            body: "{}".into(),
            body_len: 2,
            model: Some("m".into()),
            content_length: Some("2".into()),
            fault: None,
            sni: None,
            tls: false,
        }
    }

    #[test]
    fn keeps_the_last_max_records() {
        let recorder = Recorder::new(true, 3);
        for seq in 0..5 {
            recorder.push(record(seq));
        }
        let json: serde_json::Value = serde_json::from_str(&recorder.to_json()).unwrap();
        let seqs: Vec<u64> = json
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["seq"].as_u64().unwrap())
            .collect();
        assert_eq!(seqs, vec![2, 3, 4]);
        assert_eq!(json[0]["headers"][0][0], "content-type");
        assert_eq!(json[0]["headers"][0][1], "application/json");
        assert_eq!(recorder.clear(), 3);
        assert!(recorder.is_empty());
    }

    #[test]
    fn disabled_records_nothing() {
        let recorder = Recorder::new(false, 3);
        recorder.push(record(0));
        assert_eq!(recorder.to_json(), "[]");
    }
}
