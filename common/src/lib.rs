//! Helpers shared by every wellbeing crate, kept small and free of I/O so the operator, the
//! webhook and the assistant can all depend on them without pulling each other in.

pub mod clock;
pub mod id;
pub mod time;

pub use clock::{Clock, FixedClock, SharedClock, SystemClock};

/// An error and its causes on one line ("a: b: c"), for logs, records and condition messages.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Layer(&'static str, Option<Box<Layer>>);

    impl std::fmt::Display for Layer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }

    impl std::error::Error for Layer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref().map(|l| l as _)
        }
    }

    #[test]
    fn chain_joins_every_cause_in_order() {
        let e = Layer("a", Some(Box::new(Layer("b", Some(Box::new(Layer("c", None)))))));
        assert_eq!(error_chain(&e), "a: b: c");
        assert_eq!(error_chain(&Layer("alone", None)), "alone");
    }
}
