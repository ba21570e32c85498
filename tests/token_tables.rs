//! The committed vocabularies (`assets/<encoding>.tokens`, formats in
//! `src/tokens/table.rs`) are tiktoken-rs's, token for token, in rank order.
//! To regenerate them (e.g. after a tiktoken-rs update):
//! `MODEL_ROUTER_WRITE_TOKEN_TABLES=1 cargo test --test token_tables`.

// Test code: a failure should stop it loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::collections::HashMap;
use std::path::PathBuf;

/// Ordinary tokens, by rank (0..n; the first missing rank ends them).
fn tokens(bpe: &tiktoken_rs::CoreBPE) -> Vec<Vec<u8>> {
    let mut tokens = Vec::new();
    while let Ok(bytes) = bpe.decode_bytes(&[tokens.len() as u32]) {
        tokens.push(bytes);
    }
    tokens
}

/// MRTOKEN1: lengths packed in nibbles (0: the next long length), long lengths, then bytes.
fn summed(tokens: &[Vec<u8>]) -> Vec<u8> {
    let longs: Vec<u8> = tokens
        .iter()
        .filter(|t| t.len() > 15)
        .map(|t| u8::try_from(t.len()).expect("tokens are at most 255 bytes"))
        .collect();
    let mut out = b"MRTOKEN1".to_vec();
    out.extend_from_slice(&(tokens.len() as u32).to_le_bytes());
    out.extend_from_slice(&(longs.len() as u32).to_le_bytes());
    for pair in tokens.chunks(2) {
        let nibble = |t: &Vec<u8>| if t.len() > 15 { 0 } else { t.len() as u8 };
        let low = nibble(&pair[0]);
        let high = pair.get(1).map_or(0, nibble);
        out.push(low | (high << 4));
    }
    out.extend_from_slice(&longs);
    for t in tokens {
        out.extend_from_slice(t);
    }
    out
}

/// MRTOKEN2: spans into `base`'s bytes where `base` has the same token, else into our own.
fn spanned(tokens: &[Vec<u8>], base: &[Vec<u8>]) -> Vec<u8> {
    let mut in_base = HashMap::new();
    let mut at = 0u32;
    for t in base {
        in_base.insert(t.as_slice(), at);
        at += t.len() as u32;
    }
    let mut out = b"MRTOKEN2".to_vec();
    out.extend_from_slice(&(tokens.len() as u32).to_le_bytes());
    let mut own = Vec::new();
    for t in tokens {
        let len = u32::try_from(t.len()).unwrap();
        assert!(len < 256);
        let span = match in_base.get(t.as_slice()) {
            Some(&offset) => (1 << 31) | (offset << 8) | len,
            None => {
                let offset = own.len() as u32;
                own.extend_from_slice(t);
                (offset << 8) | len
            }
        };
        assert!(own.len() < 1 << 23 && at < 1 << 23);
        out.extend_from_slice(&span.to_le_bytes());
    }
    out.extend_from_slice(&own);
    out
}

fn check(name: &str, expected: &[u8]) {
    let path = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .canonicalize()
        .unwrap()
        .join(format!("assets/{name}.tokens"));
    if std::env::var_os("MODEL_ROUTER_WRITE_TOKEN_TABLES").is_some() {
        std::fs::write(&path, expected).unwrap();
    }
    let committed = std::fs::read(&path).unwrap();
    assert!(
        committed == expected,
        "{} differs from tiktoken-rs's {name}: regenerate it (see this file's header)",
        path.display()
    );
}

#[test]
fn assets_are_tiktoken_rs_vocabularies() {
    let o200k = tokens(&tiktoken_rs::o200k_base().unwrap());
    let cl100k = tokens(&tiktoken_rs::cl100k_base().unwrap());
    assert_eq!((o200k.len(), cl100k.len()), (199_998, 100_256));
    check("o200k_base", &summed(&o200k));
    check("cl100k_base", &spanned(&cl100k, &o200k));
}
