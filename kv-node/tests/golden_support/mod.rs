//! What the golden-byte tests (`golden_storage.rs`, `golden_wire.rs`) share: golden literals
//! in hex, and the comparison that prints every mismatch as a literal to paste.

/// `bytes` as lowercase hex, with a space after each field whose length `fields` gives (whatever
/// is left forms the last field), so a golden literal shows the layout it pins.
pub fn hex(bytes: &[u8], fields: &[usize]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2 + fields.len());
    let mut rest = bytes;
    for &len in fields {
        let (field, tail) = rest.split_at(len.min(rest.len()));
        out.extend(field.iter().map(|b| format!("{b:02x}")));
        out.push(' ');
        rest = tail;
    }
    out.extend(rest.iter().map(|b| format!("{b:02x}")));
    out.trim_end().to_string()
}

/// The bytes a golden hex literal spells; whitespace is ignored.
pub fn unhex(text: &str) -> Vec<u8> {
    let digits: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    assert!(digits.len().is_multiple_of(2), "odd number of hex digits in {text:?}");
    digits
        .chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).expect("a hex digit pair"))
        .collect()
}

/// One value's encoding and the golden bytes it must equal.
pub struct Golden<'a> {
    pub name: &'static str,
    pub actual: Vec<u8>,
    pub golden: &'a str,
    /// Field lengths for printing (see [`hex`]).
    pub fields: Vec<usize>,
}

/// Compares every encoding with its golden bytes. It first prints, for each one that differs,
/// the actual bytes as a literal to paste (after bumping the version: see the test file's docs), then
/// fails on the first one, showing both sides in hex and saying what `changed`.
#[track_caller]
pub fn assert_golden(cases: &[Golden<'_>], changed: &str) {
    for case in cases.iter().filter(|c| c.actual != unhex(c.golden)) {
        eprintln!(
            "golden bytes of `{}` differ; actual:\n    \"{}\"",
            case.name,
            hex(&case.actual, &case.fields)
        );
    }
    for case in cases {
        let golden = unhex(case.golden);
        assert_eq!(
            hex(&case.actual, &case.fields),
            hex(&golden, &case.fields),
            "`{}`: {changed}",
            case.name
        );
    }
}
