//! The event-stream translators across arbitrary chunk boundaries: every
//! direction fed the same upstream bytes whole and cut into pieces writes
//! the same client bytes, nothing panics, the bytes held between chunks
//! stay within the event cap, and the buffers' memory within its bound.
#![no_main]

use libfuzzer_sys::fuzz_target;
use model_router_core::request::{Api, ApiShape};
use model_router_core::translate::{translator, ResponseContext, StreamTranslator};

const MAX_EVENT: usize = 2 * 1024;
const ROUTES: [(ApiShape, Api); 4] = [
    (ApiShape::ChatCompletions, Api::AnthropicMessages),
    (ApiShape::Messages, Api::OpenaiChat),
    (ApiShape::Responses, Api::OpenaiChat),
    (ApiShape::Responses, Api::AnthropicMessages),
];

fuzz_target!(|data: &[u8]| {
    // Byte 0: direction and include_usage; byte 1: how to cut; the rest: the stream.
    let (Some(&mode), Some(&cut_seed)) = (data.first(), data.get(1)) else {
        return;
    };
    let body = data.get(2..).unwrap_or_default();
    let (client, upstream) = ROUTES[usize::from(mode) % ROUTES.len()];
    let Some(t) = translator(client, upstream) else {
        return;
    };
    let ctx = ResponseContext {
        include_usage: mode & 0x80 != 0,
    };
    let new = || StreamTranslator::new(t.events(&ctx), MAX_EVENT);
    let mut whole = new();
    let mut expected = whole.feed(body);
    expected.extend(whole.finish());

    let mut state = u32::from(cut_seed) | 0x100;
    let mut s = new();
    let mut got = Vec::new();
    let mut rest = body;
    while !rest.is_empty() {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let len = (state % 16 + 1) as usize;
        let (piece, tail) = rest.split_at(len.min(rest.len()));
        got.extend(s.feed(piece));
        assert!(s.held_bytes() <= MAX_EVENT, "held {}", s.held_bytes());
        // Three buffers (line, data, event name), each at most twice the
        // most it held (Vec's amortised growth; found by this target: 4,249
        // bytes of capacity for a 2,048-byte cap).
        assert!(
            s.retained_bytes() <= 6 * MAX_EVENT + 64,
            "retained {}",
            s.retained_bytes()
        );
        rest = tail;
    }
    got.extend(s.finish());
    assert_eq!(got, expected, "chunking changed the translation");
});
