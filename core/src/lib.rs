//! Platform-free rules shared by the `tally` agent and the edge Worker.
//!
//! Nothing in this crate performs I/O or reads a clock: time, randomness and
//! secrets are passed in as values, so every rule can be pinned by a native
//! test with exact numbers and both sides of the wire are guaranteed to agree.

/// A fieldless enum whose variants each have a fixed wire name. One list
/// defines the variants, `as_str`, `parse` and `ALL`, so no name or variant
/// can be left out of one of them. Exported for the Worker's own closed
/// vocabularies (audit actions).
#[macro_export]
macro_rules! named_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $($(#[$vmeta:meta])* $variant:ident => $text:literal,)*
        }
    ) => {
        $(#[$meta])*
        pub enum $name {
            $($(#[$vmeta])* $variant,)*
        }

        impl $name {
            pub const ALL: [$name; [$($text),*].len()] = [$($name::$variant),*];

            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)*
                }
            }

            pub fn parse(s: &str) -> Option<Self> {
                Self::ALL.into_iter().find(|m| m.as_str() == s)
            }
        }
    };
}

pub mod bucket;
pub mod budget;
pub mod categorize;
pub mod claude;
pub mod codex;
pub mod cursor;
pub mod event;
pub mod gemini;
pub mod hash;
pub mod money;
pub mod opencode;
pub mod pricing;
pub mod privacy;
pub mod redact;
pub mod release;
pub mod rollup;
pub mod seal;
pub mod source_path;
pub mod time;
pub mod usage;
pub mod wire;
