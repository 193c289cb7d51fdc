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
        let list: Vec<u32> = (0..10_000).collect();
        let shown = bounded_list(&list, 3);
        assert_eq!(shown, "0, 1, 2, … (9997 more)");
    }
}
