//! The names a follow-up carries from the playbook to the stores: which rule
//! (`PlaybookId`) and which A/B variant of its template (`VariantId`). Typed so no
//! port can take one for the other, or for a customer or feedback id. Both come from
//! the business's own playbook and template files, which are checked when loaded, so
//! they are not re-validated on the way back from JSON.

use serde::{Deserialize, Serialize};

use crate::envelope::str_newtype_impls;

macro_rules! name_newtype {
    ($name:ident, $what:literal) => {
        #[doc = concat!("A ", $what, ".")]
        #[derive(
            Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
        )]
        #[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn new(name: impl Into<String>) -> Self {
                Self(name.into())
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self(s.to_owned())
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                Self(s)
            }
        }

        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        str_newtype_impls!($name);
    };
}

name_newtype!(PlaybookId, "playbook rule's id (`detractor-apology`)");
name_newtype!(VariantId, "template variant's name (`a`, `b`)");
