use super::*;

/// Small images written by a real encoder (Pillow 13), base64: (format, width, height, data).
const ENCODED: [(&str, u32, u32, &str); 6] = [
    ("png", 3, 2, "iVBORw0KGgoAAAANSUhEUgAAAAMAAAACCAIAAAASFvFNAAAAFUlEQVR4nGM8ISfHwMDAwMDAxAADABMuAQhqwGVhAAAAAElFTkSuQmCC"),
    ("gif", 5, 7, "R0lGODdhBQAHAIEAAMgeHgAAAAAAAAAAACwAAAAABQAHAAAIDAABCBxIsKDBgwcDAgA7"),
    ("jpeg", 9, 4, JPEG_9X4),
    ("webp lossy", 6, 3, "UklGRjoAAABXRUJQVlA4IC4AAACwAQCdASoGAAMAAUAmJaACdLoABDAAAP7x3I/4DdfFtMv/vYL/3YL/3YL/WwAA"),
    ("webp lossless", 7, 300, "UklGRiQAAABXRUJQVlA4TBcAAAAvBsBKAAdQjyLXo/8BICH8Xy9G9D9UAQA="),
    ("webp extended", 33, 17, "UklGRmwAAABXRUJQVlA4WAoAAAAQAAAAIAAAEAAAQUxQSAoAAAABB1DAiAhERP8DVlA4IDwAAAAwAwCdASohABEAPm02l0ikIyIhJWgAgA2JZwB2AABX74bgAP75Hdv//kB//kB//kB//ID//iF3sgMAAAA="),
];

const JPEG_9X4: &str = "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAgGBgcGBQgHBwcJCQgKDBQNDAsLDBkSEw8UHRofHh0aHBwgJC4nICIsIxwcKDcpLDAxNDQ0Hyc5PTgyPC4zNDL/2wBDAQkJCQwLDBgNDRgyIRwhMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjL/wAARCAAEAAkDASIAAhEBAxEB/8QAHwAAAQUBAQEBAQEAAAAAAAAAAAECAwQFBgcICQoL/8QAtRAAAgEDAwIEAwUFBAQAAAF9AQIDAAQRBRIhMUEGE1FhByJxFDKBkaEII0KxwRVS0fAkM2JyggkKFhcYGRolJicoKSo0NTY3ODk6Q0RFRkdISUpTVFVWV1hZWmNkZWZnaGlqc3R1dnd4eXqDhIWGh4iJipKTlJWWl5iZmqKjpKWmp6ipqrKztLW2t7i5usLDxMXGx8jJytLT1NXW19jZ2uHi4+Tl5ufo6erx8vP09fb3+Pn6/8QAHwEAAwEBAQEBAQEBAQAAAAAAAAECAwQFBgcICQoL/8QAtREAAgECBAQDBAcFBAQAAQJ3AAECAxEEBSExBhJBUQdhcRMiMoEIFEKRobHBCSMzUvAVYnLRChYkNOEl8RcYGRomJygpKjU2Nzg5OkNERUZHSElKU1RVVldYWVpjZGVmZ2hpanN0dXZ3eHl6goOEhYaHiImKkpOUlZaXmJmaoqOkpaanqKmqsrO0tba3uLm6wsPExcbHyMnK0tPU1dbX2Nna4uPk5ebn6Onq8vP09fb3+Pn6/9oADAMBAAIRAxEAPwDkKKKK8U/TD//Z";

/// Standard base64 with padding (test helper).
fn encode(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.len();
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let v = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= n {
                out.push(ALPHABET[((v >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Full decode through the reader (test helper).
fn decode(text: &str) -> Vec<u8> {
    let reader = Base64(text.as_bytes());
    let mut len = text.trim_end_matches('=').len() * 3 / 4;
    while reader.read(0, len).is_none() {
        len -= 1;
    }
    reader.read(0, len).unwrap()
}

/// The first 24 bytes of a PNG of the given size (all the router reads).
fn png_header(width: u32, height: u32) -> Vec<u8> {
    let mut b = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
    b.extend_from_slice(&width.to_be_bytes());
    b.extend_from_slice(&height.to_be_bytes());
    b.extend_from_slice(b"\x08\x02\0\0\0");
    b
}

#[test]
fn openai_tokens_match_the_published_examples() {
    let cases = [
        // (width, height, detail, tokens) from OpenAI's "Calculating costs".
        (1024, 1024, Detail::High, 765),
        (2048, 4096, Detail::High, 1105),
        (4096, 8192, Detail::Low, 85),
        // Small images are not scaled up: one tile.
        (512, 512, Detail::High, 255),
        (100, 50, Detail::High, 255),
        // Fit 2048 square first: 4000x1000 → 2048x512 → 4x1 tiles.
        (4000, 1000, Detail::High, 85 + 4 * 170),
        // A 1920x1080 screenshot: → 1365x768 → 3x2 tiles.
        (1920, 1080, Detail::High, 85 + 6 * 170),
    ];
    for (w, h, detail, tokens) in cases {
        assert_eq!(
            ImagePricing::OpenAi.tokens(Some((w, h)), detail),
            Some(tokens),
            "{w}x{h} {detail:?}"
        );
    }
    assert_eq!(ImagePricing::OpenAi.tokens(None, Detail::Low), Some(85));
    assert_eq!(ImagePricing::OpenAi.tokens(None, Detail::High), None);
    assert_eq!(ImagePricing::OpenAi.default_tokens(), 765);
    assert_eq!(Detail::from_name(Some("auto")), Detail::High);
    assert_eq!(Detail::from_name(None), Detail::High);
    assert_eq!(Detail::from_name(Some("low")), Detail::Low);
}

#[test]
fn anthropic_tokens_match_the_published_examples() {
    let cases = [
        // Anthropic's "Evaluate image size" table.
        (200, 200, 54),
        (1000, 1000, 1334),
        (1092, 1092, 1590),
        // Long edge over 1568: 3136x1000 → 1568x500.
        (3136, 1000, 1046),
        // Over ~1600 tokens: scaled down to about 1.2 megapixels.
        (4000, 4000, 1599),
    ];
    for (w, h, tokens) in cases {
        assert_eq!(
            ImagePricing::Anthropic.tokens(Some((w, h)), Detail::High),
            Some(tokens),
            "{w}x{h}"
        );
        assert!(ImagePricing::Anthropic.tokens(Some((w, h)), Detail::Low) == Some(tokens));
    }
    assert_eq!(ImagePricing::Anthropic.default_tokens(), 1399);
    assert_eq!(ImagePricing::Anthropic.tokens(None, Detail::Low), None);
}

#[test]
fn sizes_come_from_real_encoder_output() {
    for (format, width, height, data) in ENCODED {
        assert_eq!(base64_size(data), Some((width, height)), "{format}");
        let url = format!("data:image/x;base64,{data}");
        assert_eq!(data_url_size(&url), Some((width, height)), "{format}");
    }
}

#[test]
fn jpeg_frame_is_found_past_a_large_exif_segment_without_decoding_it() {
    let jpeg = decode(JPEG_9X4);
    assert_eq!(&jpeg[..2], b"\xff\xd8");
    // An APP1 segment of 60000 bytes, as cameras write, before the rest.
    let mut big = jpeg[..2].to_vec();
    big.extend_from_slice(&[0xff, 0xe1]);
    big.extend_from_slice(&60_000u16.to_be_bytes());
    big.extend(std::iter::repeat_n(b'x', 60_000 - 2));
    big.extend_from_slice(&jpeg[2..]);
    assert_eq!(base64_size(&encode(&big)), Some((9, 4)));
    // Cut right after the frame header: still read (only headers are needed).
    let sof = big.windows(2).position(|w| w == [0xff, 0xc0]).unwrap();
    assert_eq!(base64_size(&encode(&big[..sof + 9])), Some((9, 4)));
    // Cut inside it: unknown.
    assert_eq!(base64_size(&encode(&big[..sof + 6])), None);
}

#[test]
fn the_reader_decodes_at_any_offset_in_either_alphabet() {
    let bytes: Vec<u8> = (0..=255u8).collect();
    let text = encode(&bytes);
    let reader = Base64(text.as_bytes());
    for at in [0, 1, 2, 3, 100, 253] {
        for len in [0, 1, 2, 3] {
            assert_eq!(reader.read(at, len).unwrap(), bytes[at..at + len].to_vec());
        }
    }
    assert_eq!(reader.read(255, 2), None, "past the end");
    let url_safe = text.replace('+', "-").replace('/', "_");
    assert_eq!(
        Base64(url_safe.as_bytes()).read(240, 16).unwrap(),
        bytes[240..].to_vec()
    );
    let unpadded = text.trim_end_matches('=');
    assert_eq!(
        Base64(unpadded.as_bytes()).read(250, 6).unwrap(),
        bytes[250..].to_vec()
    );
}

#[test]
fn headers_of_any_size_are_read() {
    for (w, h) in [
        (1, 1),
        (1024, 1024),
        (1092, 1092),
        (2048, 4096),
        (100_000, 3),
    ] {
        let text = encode(&png_header(w, h));
        assert_eq!(base64_size(&text), Some((w, h)));
    }
}

#[test]
fn what_is_not_a_readable_image_has_no_size() {
    let png = encode(&png_header(10, 10));
    for url in [
        "https://example.com/cat.png".to_string(),
        "data:image/png,plain-not-base64".to_string(),
        "data:image/png;base64".to_string(),
        format!("data:image/png;base64,{}", &png[..12]),
        "data:image/png;base64,!!!!not base64!!!!".to_string(),
        format!(
            "data:image/bmp;base64,{}",
            encode(b"BM this is a bitmap header....")
        ),
        format!("data:image/jpeg;base64,{}", encode(b"\xff\xd8\xff\xd9")),
        format!(
            "data:image/jpeg;base64,{}",
            encode(b"\xff\xd8\xff\xe0\x00\x01junk")
        ),
        "data:;base64,".to_string(),
    ] {
        assert_eq!(data_url_size(&url), None, "{url}");
    }
    assert_eq!(
        data_url_size(&format!("data:image/png;charset=x;BASE64,{png}")),
        Some((10, 10))
    );
}
