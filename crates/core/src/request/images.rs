//! Image inputs: their size, read from the header bytes of an inline image,
//! and the prompt tokens each provider bills for them.
//!
//! **OpenAI** (GPT-4o, GPT-4.1 and o-series vision; "Images and vision" guide,
//! section "Calculating costs"): `detail: low` costs 85 tokens. `high` (and
//! `auto`, counted as `high` here) scales the image to fit a 2048 × 2048
//! square, then so that its shortest side is 768 px (images are never scaled
//! up), covers it with 512 px tiles and costs 170 per tile plus 85. The
//! guide's examples: 1024 × 1024 high = 765, 2048 × 4096 high = 1105, any low
//! = 85. gpt-4o-mini bills 2833 + 5667 per tile and the patch-based models
//! (gpt-4.1-mini, o4-mini) 32 px patches; those are not modelled.
//!
//! **Anthropic** (Claude "Vision" guide, "Evaluate image size"): an image
//! whose long edge exceeds 1568 px, or that would cost more than about 1600
//! tokens, is first scaled down keeping its aspect ratio; it then costs
//! `width × height / 750` tokens (rounded up here: 200 × 200 ≈ 54,
//! 1000 × 1000 ≈ 1334, 1092 × 1092 ≈ 1590 as in the guide). Models with a
//! larger native resolution (Claude Opus 4.7, 2576 px) are not modelled.
//!
//! An image's size is known when it is inline (a base64 `data:` URL, or an
//! Anthropic `base64` source): only the few bytes of its header that hold
//! the size are decoded (PNG IHDR, GIF screen descriptor, WebP VP8/VP8L/VP8X,
//! JPEG start-of-frame, walking the JPEG segments by their lengths without
//! decoding them). A remote URL or a file id has no size here: it is priced
//! as a 1024 × 1024 high-detail image of the request's provider (OpenAI 765,
//! Anthropic 1399), or at the policy's `default_image_tokens`. JPEG EXIF
//! orientation is ignored (a rotated image has its sides swapped, which
//! changes the OpenAI tile count only for non-square images).

/// OpenAI: tokens of a `detail: low` image, and the base of every image.
const OPENAI_BASE: u64 = 85;
const OPENAI_PER_TILE: u64 = 170;
const OPENAI_TILE: f64 = 512.0;
const OPENAI_FIT: f64 = 2048.0;
const OPENAI_SHORT_SIDE: f64 = 768.0;
/// Anthropic: pixels per token, longest edge, and the token cap before scaling.
const ANTHROPIC_PIXELS_PER_TOKEN: f64 = 750.0;
const ANTHROPIC_LONG_EDGE: f64 = 1568.0;
const ANTHROPIC_MAX_TOKENS: f64 = 1600.0;
/// The size assumed for an image whose size is unknown.
const DEFAULT_SIDE: u32 = 1024;

/// Segments of a JPEG walked at most to find its frame header.
const MAX_JPEG_SEGMENTS: usize = 512;

/// Whose formula prices an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImagePricing {
    OpenAi,
    Anthropic,
}

/// OpenAI's `detail` setting of an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detail {
    Low,
    /// `high`, `auto` (the default) or anything else.
    High,
}

impl Detail {
    pub fn from_name(name: Option<&str>) -> Detail {
        match name {
            Some("low") => Detail::Low,
            _ => Detail::High,
        }
    }
}

impl ImagePricing {
    /// Tokens of an image of `size` (width, height) in pixels, or of unknown size.
    /// `None` when the size is needed but unknown.
    pub fn tokens(self, size: Option<(u32, u32)>, detail: Detail) -> Option<u64> {
        match (self, detail, size) {
            (ImagePricing::OpenAi, Detail::Low, _) => Some(OPENAI_BASE),
            (ImagePricing::OpenAi, Detail::High, Some((w, h))) => Some(openai_high(w, h)),
            (ImagePricing::Anthropic, _, Some((w, h))) => Some(anthropic(w, h)),
            (_, _, None) => None,
        }
    }

    /// Tokens of an image whose size is unknown: a 1024 × 1024 high-detail image.
    pub fn default_tokens(self) -> u64 {
        self.tokens(Some((DEFAULT_SIDE, DEFAULT_SIDE)), Detail::High)
            .unwrap_or(OPENAI_BASE)
    }
}

/// Scales (w, h) by `factor`, as a resize to whole pixels does (at least 1 px).
fn scaled(w: f64, h: f64, factor: f64) -> (f64, f64) {
    ((w * factor).floor().max(1.0), (h * factor).floor().max(1.0))
}

fn openai_high(width: u32, height: u32) -> u64 {
    let (mut w, mut h) = (f64::from(width.max(1)), f64::from(height.max(1)));
    if w.max(h) > OPENAI_FIT {
        (w, h) = scaled(w, h, OPENAI_FIT / w.max(h));
    }
    if w.min(h) > OPENAI_SHORT_SIDE {
        (w, h) = scaled(w, h, OPENAI_SHORT_SIDE / w.min(h));
    }
    let tiles = (w / OPENAI_TILE).ceil() * (h / OPENAI_TILE).ceil();
    // At most 4 × 16 tiles after the scaling: the cast is exact.
    (tiles as u64)
        .saturating_mul(OPENAI_PER_TILE)
        .saturating_add(OPENAI_BASE)
}

fn anthropic(width: u32, height: u32) -> u64 {
    let (mut w, mut h) = (f64::from(width.max(1)), f64::from(height.max(1)));
    if w.max(h) > ANTHROPIC_LONG_EDGE {
        (w, h) = scaled(w, h, ANTHROPIC_LONG_EDGE / w.max(h));
    }
    let max_pixels = ANTHROPIC_MAX_TOKENS * ANTHROPIC_PIXELS_PER_TOKEN;
    if w * h > max_pixels {
        (w, h) = scaled(w, h, (max_pixels / (w * h)).sqrt());
    }
    // At most 1600 after the scaling: the cast is exact.
    (w * h / ANTHROPIC_PIXELS_PER_TOKEN).ceil() as u64
}

/// The size of the image in a `data:` URL, if it is base64 and its header
/// is one the router reads.
pub fn data_url_size(url: &str) -> Option<(u32, u32)> {
    let rest = url.strip_prefix("data:")?;
    let (meta, payload) = rest.split_once(',')?;
    if !meta
        .split(';')
        .any(|p| p.trim().eq_ignore_ascii_case("base64"))
    {
        return None;
    }
    base64_size(payload)
}

/// The size of the image whose base64 text is `data`.
pub fn base64_size(data: &str) -> Option<(u32, u32)> {
    let bytes = Base64(data.trim_start().as_bytes());
    let head = bytes.head(30)?;
    if head.starts_with(b"\x89PNG\r\n\x1a\n") {
        png(&head)
    } else if head.starts_with(b"GIF87a") || head.starts_with(b"GIF89a") {
        Some((u32::from(le16(&head, 6)?), u32::from(le16(&head, 8)?)))
    } else if head.starts_with(b"RIFF") && head.get(8..12) == Some(b"WEBP") {
        webp(&head)
    } else if head.starts_with(b"\xff\xd8") {
        jpeg(&bytes)
    } else {
        None
    }
}

fn png(head: &[u8]) -> Option<(u32, u32)> {
    if head.get(12..16) != Some(b"IHDR") {
        return None;
    }
    Some((be32(head, 16)?, be32(head, 20)?))
}

fn webp(head: &[u8]) -> Option<(u32, u32)> {
    match head.get(12..16)? {
        // Lossy: a key frame's start code, then 14-bit width and height.
        b"VP8 " => {
            if head.get(23..26) != Some(b"\x9d\x01\x2a") {
                return None;
            }
            Some((
                u32::from(le16(head, 26)? & 0x3fff),
                u32::from(le16(head, 28)? & 0x3fff),
            ))
        }
        // Lossless: a signature byte, then 14 bits of width - 1 and of height - 1.
        b"VP8L" => {
            if head.get(20) != Some(&0x2f) {
                return None;
            }
            let bits = le32(head, 21)?;
            Some((
                (bits & 0x3fff).saturating_add(1),
                ((bits >> 14) & 0x3fff).saturating_add(1),
            ))
        }
        // Extended: 24 bits of canvas width - 1 and of height - 1.
        b"VP8X" => Some((
            le24(head, 24)?.saturating_add(1),
            le24(head, 27)?.saturating_add(1),
        )),
        _ => None,
    }
}

/// Walks the JPEG's segments, by their lengths, to the first start-of-frame.
fn jpeg(bytes: &Base64<'_>) -> Option<(u32, u32)> {
    let mut at: usize = 2;
    for _ in 0..MAX_JPEG_SEGMENTS {
        let marker = bytes.read(at, 4)?;
        if marker.first() != Some(&0xff) {
            return None;
        }
        let kind = *marker.get(1)?;
        match kind {
            // Fill byte before a marker.
            0xff => {
                at = at.checked_add(1)?;
                continue;
            }
            // Markers without a length (TEM, RSTn).
            0x01 | 0xd0..=0xd7 => {
                at = at.checked_add(2)?;
                continue;
            }
            // End of image or start of scan before any frame header.
            0xd9 | 0xda => return None,
            _ => {}
        }
        let length = usize::from(be16(&marker, 2)?);
        // SOF0-15 except DHT (C4), JPG (C8) and DAC (CC).
        if matches!(kind, 0xc0..=0xcf) && !matches!(kind, 0xc4 | 0xc8 | 0xcc) {
            let frame = bytes.read(at.checked_add(4)?, 5)?;
            let height = be16(&frame, 1)?;
            let width = be16(&frame, 3)?;
            return Some((u32::from(width), u32::from(height)));
        }
        if length < 2 {
            return None;
        }
        at = at.checked_add(2)?.checked_add(length)?;
    }
    None
}

fn be16(bytes: &[u8], at: usize) -> Option<u16> {
    let b = bytes.get(at..at.checked_add(2)?)?;
    Some(u16::from_be_bytes([*b.first()?, *b.get(1)?]))
}

fn le16(bytes: &[u8], at: usize) -> Option<u16> {
    let b = bytes.get(at..at.checked_add(2)?)?;
    Some(u16::from_le_bytes([*b.first()?, *b.get(1)?]))
}

fn le24(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at.checked_add(3)?)?;
    Some(u32::from_le_bytes([*b.first()?, *b.get(1)?, *b.get(2)?, 0]))
}

fn be32(bytes: &[u8], at: usize) -> Option<u32> {
    let b: [u8; 4] = bytes.get(at..at.checked_add(4)?)?.try_into().ok()?;
    Some(u32::from_be_bytes(b))
}

fn le32(bytes: &[u8], at: usize) -> Option<u32> {
    let b: [u8; 4] = bytes.get(at..at.checked_add(4)?)?.try_into().ok()?;
    Some(u32::from_le_bytes(b))
}

/// Base64 text (standard or URL-safe alphabet, padded or not) read at any
/// byte offset without decoding what comes before: byte `n` lives in the
/// 4-character group `n / 3`.
struct Base64<'a>(&'a [u8]);

impl Base64<'_> {
    /// Bytes `at .. at + len` of the decoded data; None if the text ends
    /// before them or is not base64 there.
    fn read(&self, at: usize, len: usize) -> Option<Vec<u8>> {
        let first_group = at / 3;
        let groups = at.checked_add(len)?.div_ceil(3).checked_sub(first_group)?;
        let out = self.groups(first_group, groups)?;
        let skip = at.checked_sub(first_group.checked_mul(3)?)?;
        Some(out.get(skip..skip.checked_add(len)?)?.to_vec())
    }

    /// The first bytes of the data, at most `len` (fewer if it is shorter).
    fn head(&self, len: usize) -> Option<Vec<u8>> {
        let mut out = self.groups(0, len.div_ceil(3))?;
        out.truncate(len);
        Some(out)
    }

    /// Decodes `count` 4-character groups from group `first` on (fewer at the end).
    fn groups(&self, first: usize, count: usize) -> Option<Vec<u8>> {
        let text = self.0.get(first.checked_mul(4)?..)?;
        let mut out = Vec::with_capacity(count.checked_mul(3)?);
        for chunk in text.chunks(4).take(count) {
            let mut acc: u32 = 0;
            let mut bits: u32 = 0;
            for &c in chunk {
                if c == b'=' {
                    break;
                }
                acc = (acc << 6) | u32::from(sextet(c)?);
                bits = bits.checked_add(6)?;
            }
            // 4 characters carry 3 bytes, 3 carry 2, 2 carry 1.
            let count = bits / 8;
            acc = acc.checked_shr(bits % 8)?;
            for i in (0..count).rev() {
                out.push((acc.checked_shr(i.checked_mul(8)?)? & 0xff) as u8);
            }
            if chunk.len() < 4 || chunk.contains(&b'=') {
                break;
            }
        }
        Some(out)
    }
}

fn sextet(c: u8) -> Option<u8> {
    Some(match c {
        b'A'..=b'Z' => c.checked_sub(b'A')?,
        b'a'..=b'z' => c.checked_sub(b'a')?.checked_add(26)?,
        b'0'..=b'9' => c.checked_sub(b'0')?.checked_add(52)?,
        b'+' | b'-' => 62,
        b'/' | b'_' => 63,
        _ => return None,
    })
}

#[cfg(test)]
mod tests;
