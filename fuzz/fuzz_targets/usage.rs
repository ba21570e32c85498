//! Usage parsing of response bodies (JSON and Server-Sent Events) across
//! arbitrary chunk boundaries: the same body fed whole and cut into pieces
//! reads the same usage, nothing panics, and memory stays within the
//! documented bound.
#![no_main]

use libfuzzer_sys::fuzz_target;
use model_router_core::tokens::Encoding;
use model_router_core::usage::{ResponseFormat, UsageReader};

const JSON_LIMIT: usize = 8 * 1024;
const MAX_EVENT: usize = 2 * 1024;
/// `UsageReader` holds at most the event cap, 16 KiB of text and the last delta.
const TEXT_BOUND: usize = 16 * 1024;

fuzz_target!(|data: &[u8]| {
    // Byte 0: format and encoding; byte 1: how to cut; the rest: the body.
    let (Some(&mode), Some(&cut_seed)) = (data.first(), data.get(1)) else {
        return;
    };
    let body = data.get(2..).unwrap_or_default();
    let format = if mode & 1 == 0 {
        ResponseFormat::EventStream
    } else {
        ResponseFormat::Json
    };
    let encoding = if mode & 2 == 0 {
        Encoding::O200kBase
    } else {
        Encoding::Cl100kBase
    };
    let mut whole = UsageReader::new(format, JSON_LIMIT, MAX_EVENT, encoding);
    whole.feed(body);
    let whole = whole.finish();

    // Pieces of 1..=16 bytes from a small xorshift stream seeded by byte 1.
    let mut state = u32::from(cut_seed) | 0x100;
    let mut reader = UsageReader::new(format, JSON_LIMIT, MAX_EVENT, encoding);
    let mut rest = body;
    let mut peak = 0;
    while !rest.is_empty() {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let len = (state % 16 + 1) as usize;
        let (piece, tail) = rest.split_at(len.min(rest.len()));
        reader.feed(piece);
        peak = peak.max(reader.retained_bytes());
        rest = tail;
    }
    let bound = match format {
        ResponseFormat::Json => JSON_LIMIT * 2 + 64,
        ResponseFormat::EventStream => (MAX_EVENT + TEXT_BOUND) * 2 + body.len().min(MAX_EVENT),
    };
    assert!(peak <= bound, "retained {peak} bytes, bound {bound}");
    assert_eq!(reader.finish(), whole, "chunking changed the usage read");
});
