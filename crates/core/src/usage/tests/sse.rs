//! The SSE parser on its own: the WHATWG event stream rules, oversized events, bounded memory.

use super::split_at;
use crate::usage::sse::SseParser;

/// Expected `(event name, data)` pairs.
type Events<'a> = &'a [(&'a str, &'a str)];

pub(super) fn parse(
    max_event_bytes: usize,
    stream: &[u8],
    cuts: &[usize],
) -> (Vec<(String, String)>, u64) {
    let mut parser = SseParser::new(max_event_bytes);
    let mut events = Vec::new();
    for piece in split_at(stream, cuts) {
        parser.feed(piece, &mut |name: &[u8], data: &[u8]| {
            events.push((
                String::from_utf8_lossy(name).into_owned(),
                String::from_utf8_lossy(data).into_owned(),
            ));
        });
    }
    (events, parser.oversized_events)
}

#[test]
fn sse_parsing_follows_the_spec() {
    let cases: &[(&str, &str, Events)] = &[
        (
            "one space after the colon is removed",
            "data: a\n\n",
            &[("", "a")],
        ),
        ("no space after the colon", "data:a\n\n", &[("", "a")]),
        ("only one space is removed", "data:  a\n\n", &[("", " a")]),
        (
            "data lines are joined",
            "data: a\ndata: b\n\n",
            &[("", "a\nb")],
        ),
        (
            "empty data line",
            "data: a\ndata:\ndata: b\n\n",
            &[("", "a\n\nb")],
        ),
        (
            "a field name alone has an empty value",
            "data\n\n",
            &[("", "")],
        ),
        (
            "event names apply to one event",
            "event: x\ndata: 1\n\ndata: 2\n\n",
            &[("x", "1"), ("", "2")],
        ),
        (
            "an event without data is not dispatched",
            "event: x\n\ndata: 2\n\n",
            &[("", "2")],
        ),
        (
            "comments are ignored",
            ": hi\ndata: 1\n: there\n\n",
            &[("", "1")],
        ),
        ("a comment alone dispatches nothing", ": hi\n\n", &[]),
        (
            "other fields are ignored",
            "id: 7\nretry: 10\nfoo: bar\ndata: 1\n\n",
            &[("", "1")],
        ),
        (
            "colons in the value are kept",
            "data: {\"a\":1}\n\n",
            &[("", "{\"a\":1}")],
        ),
        (
            "an unterminated event is discarded",
            "data: 1\n\ndata: 2\n",
            &[("", "1")],
        ),
        ("an unterminated line is discarded", "data: 1", &[]),
        ("crlf", "data: 1\r\ndata: 2\r\n\r\n", &[("", "1\n2")]),
        ("cr", "data: 1\rdata: 2\r\r", &[("", "1\n2")]),
        (
            "mixed line endings",
            "data: 1\r\ndata: 2\n\r\ndata: 3\r\r",
            &[("", "1\n2"), ("", "3")],
        ),
        (
            "cr then lf are one line ending",
            "data: 1\r\n\r\n",
            &[("", "1")],
        ),
        (
            "lf then cr are two line endings",
            "data: 1\n\rdata: 2\n\n",
            &[("", "1"), ("", "2")],
        ),
        ("leading blank lines", "\n\n\ndata: 1\n\n", &[("", "1")]),
        (
            "a leading byte order mark is dropped",
            "\u{FEFF}data: 1\n\n",
            &[("", "1")],
        ),
        (
            "a later byte order mark is part of the field name",
            "data: 1\n\n\u{FEFF}data: 2\n\n",
            &[("", "1")],
        ),
        (
            "done is an ordinary event",
            "data: [DONE]\n\n",
            &[("", "[DONE]")],
        ),
        ("multi-byte data", "data: Grüße 👋🏽\n\n", &[("", "Grüße 👋🏽")]),
    ];
    for &(name, stream, want) in cases {
        let want: Vec<(String, String)> = want
            .iter()
            .map(|&(n, d)| (n.to_owned(), d.to_owned()))
            .collect();
        let bytes = stream.as_bytes();
        let (events, oversized) = parse(1024, bytes, &[]);
        assert_eq!(events, want, "{name}");
        assert_eq!(oversized, 0, "{name}");
        for cut in 0..=bytes.len() {
            assert_eq!(parse(1024, bytes, &[cut]).0, want, "{name} cut at {cut}");
        }
    }
}

#[test]
fn sse_oversized_events_are_skipped_to_their_blank_line() {
    let long = "y".repeat(40);
    let cases: Vec<(&str, String, Events, u64)> = vec![
        (
            "one long data line",
            format!("data: {long}\n\ndata: ok\n\n"),
            &[("", "ok")],
            1,
        ),
        (
            "data lines that add up",
            "data: 01234567\ndata: 89abcdef\ndata: more\n\ndata: ok\n\n".to_owned(),
            &[("", "ok")],
            1,
        ),
        (
            "a long event name",
            format!("event: {long}\ndata: 1\n\ndata: ok\n\n"),
            &[("", "ok")],
            1,
        ),
        (
            "a long data line without a space",
            format!("data:{long}\n\ndata: ok\n\n"),
            &[("", "ok")],
            1,
        ),
        (
            "a long comment is dropped alone",
            format!(": {long}\ndata: 1\n\n"),
            &[("", "1")],
            0,
        ),
        (
            "a long id is dropped alone",
            format!("data: 1\nid: {long}\n\n"),
            &[("", "1")],
            0,
        ),
        (
            "a long unknown field is dropped alone",
            format!("{long}: 1\ndata: 2\n\n"),
            &[("", "2")],
            0,
        ),
        (
            "an oversized event at the end of the stream",
            format!("data: ok\n\ndata: {long}"),
            &[("", "ok")],
            1,
        ),
        (
            "every event oversized",
            format!("data: {long}\r\n\r\ndata: {long}\r\n\r\n"),
            &[],
            2,
        ),
    ];
    for (name, stream, want, want_oversized) in cases {
        let want: Vec<(String, String)> = want
            .iter()
            .map(|&(n, d)| (n.to_owned(), d.to_owned()))
            .collect();
        let bytes = stream.as_bytes();
        for cut in 0..=bytes.len() {
            let (events, oversized) = parse(16, bytes, &[cut]);
            assert_eq!(events, want, "{name} cut at {cut}");
            assert_eq!(oversized, want_oversized, "{name} cut at {cut}");
        }
    }
}

#[test]
fn sse_memory_is_bounded_by_the_event_limit() {
    let mut parser = SseParser::new(100);
    let huge = format!(
        "data: {}\n\n: {}\n\n",
        "z".repeat(1 << 20),
        "c".repeat(1 << 20)
    );
    for piece in huge.as_bytes().chunks(4096) {
        parser.feed(piece, &mut |_: &[u8], _: &[u8]| panic!("nothing fits"));
        assert!(
            parser.retained_bytes() <= 256,
            "{}",
            parser.retained_bytes()
        );
    }
    assert_eq!(parser.oversized_events, 1);
}

#[test]
fn held_bytes_stay_under_the_limit_and_capacity_within_six_times_it() {
    // Many small fields that fit, fed in small pieces: the buffers grow by
    // doubling (the fuzz target found 4,249 bytes of capacity for 2,048).
    let max = 2048;
    let mut parser = SseParser::new(max);
    let event = format!(
        "event: {}\ndata: {}\ndata: {}\n\n",
        "e".repeat(300),
        "d".repeat(900),
        "x".repeat(700)
    );
    let stream = event.repeat(8);
    let mut seen = 0;
    for piece in stream.as_bytes().chunks(7) {
        parser.feed(piece, &mut |_: &[u8], _: &[u8]| seen += 1);
        assert!(parser.held_bytes() <= max, "{}", parser.held_bytes());
        assert!(
            parser.retained_bytes() <= 6 * max + 64,
            "{}",
            parser.retained_bytes()
        );
    }
    assert_eq!(seen, 8);
}
