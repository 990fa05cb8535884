//! How long an SMS is, the way the network counts: GSM-7 (the GSM 03.38 default alphabet, its
//! extension table's characters taking two septets) or, when any character is outside it, UCS-2
//! (UTF-16 code units: an emoji takes two). One message holds 160 septets or 70 units; a longer
//! one is split into segments of 153 or 67, the rest of each 140-byte PDU being the concatenation
//! header. A two-septet character or a surrogate pair is never split across segments, so the
//! count here packs characters whole, as handsets and Twilio do.
//!
//! Replies are made GSM-friendly first ([`normalize`]: curly quotes, dashes and the ellipsis
//! become ASCII), because one "’" would turn a whole reply into UCS-2 and more than double its
//! segments, and then capped at [`MAX_SEGMENTS`] ([`fit`]).

/// At most this many segments per message: 612 GSM-7 characters, enough for any reply the
/// assistant means to send, and a bound on what one runaway reply can cost.
pub const MAX_SEGMENTS: usize = 4;

/// GSM-7 in one message, and per segment of a concatenated one (septets).
pub const GSM7_SINGLE: usize = 160;
pub const GSM7_SEGMENT: usize = 153;
/// UCS-2 in one message, and per segment of a concatenated one (UTF-16 code units).
pub const UCS2_SINGLE: usize = 70;
pub const UCS2_SEGMENT: usize = 67;

/// GSM 03.38's default alphabet, in table order (the escape code 0x1B left out: nobody types it).
const GSM7_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
/// Its extension table: each is sent as escape + code, two septets.
const GSM7_EXTENSION: &str = "\u{0C}^{}\\[~]|€";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Gsm7,
    Ucs2,
}

/// What a text costs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Count {
    pub encoding: Encoding,
    /// Septets (GSM-7) or UTF-16 code units (UCS-2).
    pub units: usize,
    pub segments: usize,
}

/// Septets of `c` in GSM-7: 1, 2 (extension table), or None (not in GSM-7).
pub fn gsm7_septets(c: char) -> Option<usize> {
    if GSM7_BASIC.contains(c) {
        Some(1)
    } else if GSM7_EXTENSION.contains(c) {
        Some(2)
    } else {
        None
    }
}

pub fn count(text: &str) -> Count {
    let gsm: Option<Vec<usize>> = text.chars().map(gsm7_septets).collect();
    let (encoding, sizes, single, segment) = match gsm {
        Some(sizes) => (Encoding::Gsm7, sizes, GSM7_SINGLE, GSM7_SEGMENT),
        None => (Encoding::Ucs2, text.chars().map(char::len_utf16).collect(), UCS2_SINGLE, UCS2_SEGMENT),
    };
    let units: usize = sizes.iter().sum();
    let segments = if units == 0 {
        0
    } else if units <= single {
        1
    } else {
        // Pack whole characters: one that does not fit in what is left starts the next segment.
        let (mut segments, mut used) = (1, 0);
        for size in sizes {
            if used + size > segment {
                segments += 1;
                used = 0;
            }
            used += size;
        }
        segments
    };
    Count { encoding, units, segments }
}

/// Typographic characters with a GSM-7 stand-in, so that they do not make a message UCS-2.
pub fn normalize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\u{2018}' | '\u{2019}' | '\u{201A}' | '\u{201B}' | '\u{2032}' | '\u{00B4}' | '`' => out.push('\''),
            '\u{201C}' | '\u{201D}' | '\u{201E}' | '\u{201F}' | '\u{2033}' | '\u{00AB}' | '\u{00BB}' => out.push('"'),
            '\u{2010}' | '\u{2011}' | '\u{2012}' | '\u{2013}' | '\u{2014}' | '\u{2015}' | '\u{2212}' => out.push('-'),
            '\u{2026}' => out.push_str("..."),
            '\u{00A0}' | '\u{2002}' | '\u{2003}' | '\u{2009}' | '\u{202F}' => out.push(' '),
            '\u{2022}' | '\u{00B7}' => out.push('-'),
            '\t' => out.push(' '),
            // Zero-width characters carry nothing a reader sees.
            '\u{200B}' | '\u{200C}' | '\u{200D}' | '\u{FEFF}' => {}
            c => out.push(c),
        }
    }
    out
}

/// `text` normalized and, when longer than `max_segments`, cut at the last word boundary that
/// leaves room for "..." (a GSM-7 ellipsis: "…" itself is UCS-2).
pub fn fit(text: &str, max_segments: usize) -> String {
    let text = normalize(text.trim());
    if count(&text).segments <= max_segments {
        return text;
    }
    let candidate = |end: usize| format!("{}...", text[..end].trim_end());
    let fits = |end: usize| count(&candidate(end)).segments <= max_segments;
    let words: Vec<usize> = text.char_indices().filter(|(_, c)| c.is_whitespace()).map(|(i, _)| i).collect();
    // The cost of a prefix only grows with its length, so the longest one that fits is found by
    // bisection: over word boundaries, or over characters when one word fills everything.
    let best = |ends: &[usize]| -> Option<usize> {
        let n = ends.partition_point(|&end| fits(end));
        n.checked_sub(1).map(|i| ends[i])
    };
    let end = best(&words).filter(|&e| !text[..e].trim().is_empty()).or_else(|| {
        let chars: Vec<usize> = text.char_indices().map(|(i, _)| i).skip(1).collect();
        best(&chars)
    });
    end.map_or_else(|| "...".to_string(), candidate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_are_counted_as_the_network_does() {
        let gsm = Encoding::Gsm7;
        let ucs = Encoding::Ucs2;
        let cases: &[(&str, String, Encoding, usize, usize)] = &[
            ("empty", String::new(), gsm, 0, 0),
            ("one char", "a".into(), gsm, 1, 1),
            ("160 GSM-7: one message", "a".repeat(160), gsm, 160, 1),
            ("161 GSM-7: two segments", "a".repeat(161), gsm, 161, 2),
            ("306 GSM-7: two full segments", "a".repeat(306), gsm, 306, 2),
            ("307 GSM-7: three", "a".repeat(307), gsm, 307, 3),
            ("GSM-7 accents stay GSM-7", "é".repeat(160), gsm, 160, 1),
            ("Greek capitals are GSM-7", "ΔΦΓΛΩΠΨΣΘΞ".into(), gsm, 10, 1),
            ("an extension char counts 2", "€".into(), gsm, 2, 1),
            ("80 extension chars fill one message", "{".repeat(80), gsm, 160, 1),
            ("81 extension chars: two", "[".repeat(81), gsm, 162, 2),
            // 152 + an escape pair would straddle the segment boundary: it moves to the next one.
            ("a split escape pair moves on", format!("{}^{}", "a".repeat(152), "a".repeat(10)), gsm, 164, 2),
            ("pair at the boundary", format!("{}|{}", "a".repeat(152), "a".repeat(153)), gsm, 307, 3),
            ("70 UCS-2: one message", "ж".repeat(70), ucs, 70, 1),
            ("71 UCS-2: two", "ж".repeat(71), ucs, 71, 2),
            ("134 UCS-2: two", "ж".repeat(134), ucs, 134, 2),
            ("135 UCS-2: three", "ж".repeat(135), ucs, 135, 3),
            ("one curly quote makes it UCS-2", format!("{}\u{2019}", "a".repeat(69)), ucs, 70, 1),
            ("an emoji is two units", "\u{1F642}".into(), ucs, 2, 1),
            ("35 emoji fill one message", "\u{1F642}".repeat(35), ucs, 70, 1),
            // 66 units + a surrogate pair: the pair starts the next segment.
            ("a split surrogate pair moves on", format!("{}\u{1F642}{}", "ж".repeat(66), "ж".repeat(10)), ucs, 78, 2),
            ("lowercase ç is not GSM-7", "ç".into(), ucs, 1, 1),
        ];
        for (name, text, encoding, units, segments) in cases {
            assert_eq!(count(text), Count { encoding: *encoding, units: *units, segments: *segments }, "{name}");
        }
    }

    #[test]
    fn typography_becomes_gsm7() {
        let text = "It\u{2019}s \u{201C}fine\u{201D} \u{2014} really\u{2026}";
        assert_eq!(normalize(text), "It's \"fine\" - really...");
        assert_eq!(count(&normalize(text)).encoding, Encoding::Gsm7);
        // Emoji are left alone: the reply is UCS-2 on purpose then.
        assert_eq!(count(&normalize("well done \u{1F389}")).encoding, Encoding::Ucs2);
    }

    #[test]
    fn long_replies_are_cut_at_a_word_with_an_ellipsis() {
        let short = "Short and sweet.";
        assert_eq!(fit(short, MAX_SEGMENTS), short);
        let long = "word ".repeat(200);
        let cut = fit(&long, MAX_SEGMENTS);
        assert!(cut.ends_with("word..."), "{cut}");
        assert_eq!(count(&cut).segments, MAX_SEGMENTS);
        assert!(count(&cut).units > GSM7_SEGMENT * 4 - 6, "as much as fits: {}", count(&cut).units);
        let ucs = "слово ".repeat(100);
        let cut = fit(&ucs, 2);
        assert!(cut.ends_with("слово..."), "{cut}");
        assert_eq!(count(&cut), Count { encoding: Encoding::Ucs2, units: count(&cut).units, segments: 2 });
        // One endless word is cut inside it.
        let word = "a".repeat(1000);
        let cut = fit(&word, 1);
        assert_eq!(cut.len(), 160);
        assert!(cut.ends_with("..."));
    }
}
