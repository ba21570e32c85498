use std::collections::HashMap;

/// Counts words, ignoring ASCII case.
pub fn word_counts(text: &str) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for word in text.split_whitespace() {
        *counts.entry(word.to_ascii_lowercase()).or_insert(0) += 1;
    }
    counts
}

#[derive(Debug, Clone, PartialEq)]
enum Shape<'a> {
    Circle { r: f64 },
    Named(&'a str, [u8; 4]),
}

fn main() {
    let s = Shape::Named("box", [0xDE, 0xAD, 0xBE, 0xEF]);
    match &s {
        Shape::Circle { r } if *r > 0.0 => println!("area {}", std::f64::consts::PI * r * r),
        other => println!("{other:?} -> {:#?}", word_counts("a A b")),
    }
    let v: Vec<_> = (0..10).filter(|x| x % 3 == 0).map(|x| x << 2).collect();
    assert_eq!(v, vec![0, 12, 24, 36]);
}
