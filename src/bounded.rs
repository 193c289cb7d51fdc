//! Error messages stay bounded: whatever an error echoes from its input (a keyid, a
//! signature list, a name, a URL, a path in values) goes through [`bounded`], which keeps
//! at most [`MAX_ECHO`] characters and says how much was left out.

/// How many characters of an input an error message echoes.
pub const MAX_ECHO: usize = 200;

/// How long one cause of an error chain may be when it is shown: a last guard for
/// messages of other libraries that quote their input.
pub const MAX_CAUSE: usize = 2_000;

/// `text` when it is at most `max` characters, else its first `max` characters followed by
/// `… (N more characters)`.
pub fn bounded(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text.to_owned(),
        Some((cut, _)) => {
            let left = text[cut..].chars().count();
            format!("{}… ({left} more characters)", &text[..cut])
        }
    }
}

/// `text` when it is at most `max` bytes long, else its beginning followed by
/// `… (N more bytes)`, at most `max` bytes in all (never cutting a character): for
/// what is stored, where bytes, not characters, are the limit. Cutting a cut text
/// again to the same `max` leaves it as it is.
pub fn bounded_bytes(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let boundary = |at: usize| {
        (0..=at)
            .rev()
            .find(|&i| text.is_char_boundary(i))
            .unwrap_or(0)
    };
    // The count is at most the whole length: room for its longest form.
    let room = format!("… ({} more bytes)", text.len()).len();
    if room > max {
        return text[..boundary(max)].to_owned();
    }
    let cut = boundary(max - room);
    format!("{}… ({} more bytes)", &text[..cut], text.len() - cut)
}

/// The first `max` items of a list, each shown with [`bounded`], joined with `, `, and
/// `… (N more)` when there were more.
pub fn bounded_list<T: std::fmt::Display>(items: &[T], max: usize) -> String {
    let mut out: Vec<String> = items
        .iter()
        .take(max)
        .map(|i| bounded(&i.to_string(), MAX_ECHO))
        .collect();
    if items.len() > max {
        out.push(format!("… ({} more)", items.len() - max));
    }
    out.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_input_is_cut_with_a_count() {
        assert_eq!(bounded("short", 10), "short");
        assert_eq!(bounded("abcdef", 3), "abc… (3 more characters)");
        let huge = "k".repeat(1 << 20);
        let shown = bounded(&huge, MAX_ECHO);
        assert!(shown.len() < MAX_ECHO + 40, "{}", shown.len());
        assert!(shown.ends_with(&format!("({} more characters)", (1 << 20) - MAX_ECHO)));
        // Never cut inside a character.
        assert_eq!(bounded("ééé", 2), "éé… (1 more characters)");
        assert_eq!(bounded_bytes("short", 5), "short");
        let long = "x".repeat(100);
        assert_eq!(
            bounded_bytes(&long, 40),
            format!("{}… (80 more bytes)", "x".repeat(20))
        );
        for max in [0, 1, 10, 20, 40, 99] {
            let cut = bounded_bytes(&long, max);
            assert!(cut.len() <= max, "{max}: {cut}");
            assert_eq!(
                bounded_bytes(&cut, max),
                cut,
                "cutting again changes nothing"
            );
        }
        // Never cut inside a character.
        assert_eq!(bounded_bytes(&"é".repeat(20), 25), "ééé… (34 more bytes)");
        assert_eq!(bounded_bytes("ééé", 3), "é");
        let list: Vec<u32> = (0..10_000).collect();
        let shown = bounded_list(&list, 3);
        assert_eq!(shown, "0, 1, 2, … (9997 more)");
    }
}
