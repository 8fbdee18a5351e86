//! Fieldless enums spelled by fixed keywords on the command line and in settings.

/// Declares the enum with `ALL`, `as_str`, `Display` and a `FromStr` whose error names
/// what was given and every keyword accepted, so each such setting refuses a typo the
/// same way.
#[macro_export]
macro_rules! keyword_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident ($what:literal) {
            $($(#[$vmeta:meta])* $variant:ident = $keyword:literal),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        $vis enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $keyword),+
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($keyword => Ok($name::$variant),)+
                    other => Err(format!(
                        "unknown {} {other:?} (expected {})",
                        $what,
                        [$($keyword),+].join(", ")
                    )),
                }
            }
        }
    };
}

#[cfg(test)]
mod tests {
    keyword_enum! {
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        enum Colour ("colour") {
            Red = "red",
            /// Documented variants keep their docs.
            DarkBlue = "dark-blue",
        }
    }

    #[test]
    fn keywords_round_trip_and_a_typo_names_every_choice() {
        for c in Colour::ALL {
            assert_eq!(c.as_str().parse::<Colour>(), Ok(*c));
            assert_eq!(c.to_string(), c.as_str());
        }
        assert_eq!(
            "blue".parse::<Colour>(),
            Err("unknown colour \"blue\" (expected red, dark-blue)".to_owned())
        );
    }
}
